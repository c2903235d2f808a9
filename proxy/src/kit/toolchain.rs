//! `switchyard plugin build`: runs the plugin's language toolchain and leaves a component in
//! `build/<name>.wasm`. Rust: cargo for `wasm32-unknown-unknown`, then `wit-component` wraps the
//! core module. JavaScript: `componentize-js` (npm `@bytecodealliance/componentize-js`) with every
//! optional WASI feature disabled, so the component imports only the host interface. Python:
//! `componentize-py` (PyPI) against the plugin's `wit/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::manifest::{Language, Manifest};

/// Where the toolchains are: explicit paths (from the environment) win, then the project's
/// `.cache/toolchains` (scripts/setup-plugin-toolchains.sh installs there), then `PATH`.
#[derive(Debug, Clone, Default)]
pub struct Toolchains {
    pub componentize_js: Option<PathBuf>,
    pub componentize_py: Option<PathBuf>,
    /// `CARGO_TARGET_DIR`, when set: Rust plugins build there instead of `<dir>/target`.
    pub cargo_target_dir: Option<PathBuf>,
}

/// The repository this binary was built from: its `.cache/toolchains` is the default install.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Toolchains {
    /// From `SWITCHYARD_COMPONENTIZE_JS`, `SWITCHYARD_COMPONENTIZE_PY` and `CARGO_TARGET_DIR`.
    pub fn from_env(env: &dyn crate::env::EnvSource) -> Self {
        Self {
            componentize_js: env.var("SWITCHYARD_COMPONENTIZE_JS").map(PathBuf::from),
            componentize_py: env.var("SWITCHYARD_COMPONENTIZE_PY").map(PathBuf::from),
            cargo_target_dir: env.var("CARGO_TARGET_DIR").map(PathBuf::from),
        }
    }

    fn js(&self) -> PathBuf {
        self.componentize_js
            .clone()
            .unwrap_or_else(|| installed("js/node_modules/.bin/componentize-js", "componentize-js"))
    }

    fn py(&self) -> PathBuf {
        self.componentize_py
            .clone()
            .unwrap_or_else(|| installed("py/bin/componentize-py", "componentize-py"))
    }
}

fn installed(under_cache: &str, on_path: &str) -> PathBuf {
    let cached = repo_root().join(".cache/toolchains").join(under_cache);
    if cached.exists() { cached } else { PathBuf::from(on_path) }
}

/// Build the plugin in `dir`; returns the component's path.
pub fn build(dir: &Path, tools: &Toolchains) -> Result<PathBuf, String> {
    let manifest = Manifest::load(dir)?;
    // Absolute: the toolchains run in `dir` (or a staging copy of it), where a relative output
    // path such as `examples/x/build/x.wasm` would name a file below it.
    let out = std::path::absolute(manifest.artifact(dir))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let build_dir = out.parent().unwrap_or(dir);
    std::fs::create_dir_all(build_dir).map_err(|e| format!("{}: {e}", build_dir.display()))?;
    match manifest.language {
        Language::Rust => build_rust(dir, &manifest, tools, &out)?,
        Language::Js => {
            let entry = manifest.entry.as_deref().unwrap_or("plugin.js");
            // componentize-js reads the sources inside a sandbox that refuses symlinks: build
            // from a copy with them resolved.
            let stage = build_dir.join("js-src");
            let _ = std::fs::remove_dir_all(&stage);
            copy_sources(dir, &stage, &["js", "mjs"])?;
            let wit = dir
                .join("wit")
                .canonicalize()
                .map_err(|e| format!("{}/wit: {e}", dir.display()))?;
            let out = std::path::absolute(&out).map_err(|e| e.to_string())?;
            let mut cmd = Command::new(tools.js());
            cmd.current_dir(&stage)
                .arg(entry)
                .arg("--wit")
                .arg(&wit)
                .args(["--world-name", "plugin"]);
            // Every optional feature off: the component imports only switchyard:plugin/host.
            cmd.args(["--disable", "stdio", "random", "clocks", "http", "fetch-event", "--out"]);
            run(cmd.arg(&out), "componentize-js")?;
        }
        Language::Python => {
            let entry = manifest.entry.as_deref().unwrap_or("app.py");
            let module = entry.strip_suffix(".py").unwrap_or(entry);
            let mut cmd = Command::new(tools.py());
            cmd.current_dir(dir).args(["--wit-path", "wit", "--world", "plugin", "componentize"]);
            cmd.args([module, "--python-path", ".", "--python-path", "sdk", "--output"]);
            run(cmd.arg(&out), "componentize-py")?;
        }
    }
    Ok(out)
}

fn build_rust(
    dir: &Path,
    manifest: &Manifest,
    tools: &Toolchains,
    out: &Path,
) -> Result<(), String> {
    let target_dir = tools.cargo_target_dir.clone().unwrap_or_else(|| dir.join("target"));
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(&target_dir);
    run(&mut cmd, "cargo")?;
    let core = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", manifest.name.replace('-', "_")));
    let bytes = std::fs::read(&core).map_err(|e| format!("{}: {e}", core.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("wrapping {} into a component: {e:#}", core.display()))?;
    std::fs::write(out, component).map_err(|e| format!("{}: {e}", out.display()))
}

/// Copy the files with these extensions under `src` to `dst`, following symlinks; skips build
/// output and dependencies' folders.
fn copy_sources(src: &Path, dst: &Path, extensions: &[&str]) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(dst).map_err(|e| err(dst, e))?;
    for entry in std::fs::read_dir(src).map_err(|e| err(src, e))? {
        let path = entry.map_err(|e| err(src, e))?.path();
        let name = path.file_name().unwrap_or_default();
        if path.is_dir() {
            if !["build", "target", "node_modules", "fixtures", "wit"].iter().any(|s| name == *s) {
                copy_sources(&path, &dst.join(name), extensions)?;
            }
        } else if path.extension().is_some_and(|x| extensions.iter().any(|e| x == *e)) {
            std::fs::copy(&path, dst.join(name)).map_err(|e| err(&path, e))?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| {
        format!(
            "cannot run {what} ({}): {e}; install it with scripts/setup-plugin-toolchains.sh",
            cmd.get_program().to_string_lossy()
        )
    })?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}
