//! `switchyard plugin new <lang> <name>`: a plugin directory from the language's template, with
//! the SDK, the WIT contract and the template's fixtures copied in, so it builds and passes
//! `switchyard plugin test` as it is. The templates live in plugin-sdk/templates and are compiled
//! into the binary.

use std::path::{Path, PathBuf};

use super::manifest::{self, Language};

const WIT: &str = include_str!("../../../plugin-sdk/wit/plugin.wit");
const FIXTURE: &str = include_str!("../../../plugin-sdk/templates/fixtures/template.json");
const JS_PLUGIN: &str = include_str!("../../../plugin-sdk/templates/js/plugin.js");
const JS_SDK: &str = include_str!("../../../plugin-sdk/js/switchyard.js");
const JS_HOST: &str = include_str!("../../../plugin-sdk/js/host.js");
const PY_APP: &str = include_str!("../../../plugin-sdk/templates/python/app.py");
const PY_SDK: &str = include_str!("../../../plugin-sdk/python/switchyard_plugin.py");
const RUST_CARGO: &str = include_str!("../../../plugin-sdk/templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("../../../plugin-sdk/templates/rust/src/lib.rs");

/// Write a new plugin called `name` in `language` into `dir` (which must not exist yet).
/// `rust_sdk`: the `switchyard-plugin-sdk` crate a Rust plugin depends on by path.
pub fn new(
    language: Language,
    name: &str,
    dir: &Path,
    rust_sdk: &Path,
) -> Result<Vec<PathBuf>, String> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(format!(
            "plugin name {name:?}: use lower-case letters, digits and '-', starting with a letter"
        ));
    }
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let fill = |s: &str| s.replace("{{name}}", name);
    let (lang, entry) = match language {
        Language::Rust => ("rust", None),
        Language::Js => ("js", Some("plugin.js")),
        Language::Python => ("python", Some("app.py")),
    };
    let entry_line = entry.map(|e| format!("entry = \"{e}\"\n")).unwrap_or_default();
    let manifest_text = format!(
        "# Read by `switchyard plugin build|test|sign|push`.\nname = \"{name}\"\nlanguage = \"{lang}\"\n# The version a signature carries: raise it for every release.\nversion = 1\n{entry_line}"
    );
    let mut files: Vec<(&str, String)> = vec![
        (manifest::FILE, manifest_text),
        ("wit/plugin.wit", WIT.to_string()),
        ("fixtures/template.json", FIXTURE.to_string()),
        (".gitignore", "build/\ntarget/\n__pycache__/\n".to_string()),
    ];
    match language {
        Language::Js => files.extend([
            ("plugin.js", fill(JS_PLUGIN)),
            ("sdk/switchyard.js", JS_SDK.to_string()),
            ("sdk/host.js", JS_HOST.to_string()),
        ]),
        Language::Python => files
            .extend([("app.py", fill(PY_APP)), ("sdk/switchyard_plugin.py", PY_SDK.to_string())]),
        Language::Rust => {
            let sdk =
                rust_sdk.canonicalize().map_err(|e| format!("{}: {e}", rust_sdk.display()))?;
            let cargo = fill(RUST_CARGO).replace("{{sdk_path}}", &sdk.display().to_string());
            files.extend([("Cargo.toml", cargo), ("src/lib.rs", fill(RUST_LIB))]);
        }
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
