//! The `switchyard plugin ...` arguments and what each subcommand does with them. `main` only
//! parses and calls [`run`].

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::manifest::{Language, Manifest};
use super::{fixture, push, replay, scaffold, sign, toolchain};
use crate::env::EnvSource;

/// `switchyard plugin <command>`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Make a new plugin directory from the language's template.
    New {
        language: Language,
        name: String,
        /// Where to create it (default: ./<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The switchyard-plugin-sdk crate a Rust plugin depends on (default: this repository's).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build the plugin in --dir into build/<name>.wasm with its language's toolchain.
    Build {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Load the component in the real host and replay JSON fixtures against it.
    Test {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The component (default: the built one, build/<name>.wasm).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// A fixture file or a directory of them (default: <dir>/fixtures).
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Make an Ed25519 signing key: writes the private key, prints the public one for
    /// `plugins.trusted_keys`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign the component: writes <file>.sig (name, version and sha256, signed).
    Sign {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The private key file (from `switchyard plugin keygen`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// Upload the component (and <file>.sig if present) to a running proxy's admin API.
    Push {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The admin listener, e.g. http://127.0.0.1:8090 (https:// through a TLS terminator).
        #[arg(long)]
        admin: String,
        /// Extra trusted root certificates (PEM) for an https:// admin URL.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// The environment variable holding the admin token.
        #[arg(long, default_value = "SWITCHYARD_ADMIN_TOKEN")]
        token_env: String,
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
}

/// Run one subcommand; the error is what to print.
pub fn run(command: PluginCommand, env: &dyn EnvSource) -> Result<(), String> {
    match command {
        PluginCommand::New { language, name, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.unwrap_or_else(|| toolchain::repo_root().join("plugin-sdk"));
            let files = scaffold::new(language, &name, &dir, &sdk)?;
            println!(
                "created {} ({} files); next: switchyard plugin build --dir {0}",
                dir.display(),
                files.len()
            );
            Ok(())
        }
        PluginCommand::Build { dir } => {
            let out = toolchain::build(&dir, &toolchain::Toolchains::from_env(env))?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            println!("built {} ({size} bytes)", out.display());
            Ok(())
        }
        PluginCommand::Test { dir, wasm, fixtures } => {
            let wasm = artifact(&dir, wasm)?;
            let fixtures = fixtures.unwrap_or_else(|| dir.join("fixtures"));
            test(&wasm, &fixtures)
        }
        PluginCommand::Keygen { out } => {
            let (private, public) = sign::keygen()?;
            write_private(&out, &private)?;
            println!("wrote {}; trusted_keys = [\"{public}\"]", out.display());
            Ok(())
        }
        PluginCommand::Sign { dir, key, wasm } => {
            let manifest = Manifest::load(&dir)?;
            let wasm = wasm.unwrap_or_else(|| manifest.artifact(&dir));
            let key = sign::read_key(&key)?;
            let sig = sign::sign_file(&key, &manifest.name, manifest.version, &wasm)?;
            println!("wrote {} ({} version {})", sig.display(), manifest.name, manifest.version);
            Ok(())
        }
        PluginCommand::Push { dir, admin, ca_file, token_env, wasm } => {
            let manifest = Manifest::load(&dir)?;
            let wasm = wasm.unwrap_or_else(|| manifest.artifact(&dir));
            let token = env.secret(&token_env).ok_or_else(|| format!("{token_env} is not set"))?;
            let bytes = std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
            let sig = std::fs::read(crate::plugin::registry::sig_path(&wasm)).ok();
            let pushed = runtime()?.block_on(push::push(
                &admin,
                &token,
                &manifest.name,
                bytes,
                sig.as_deref(),
                ca_file.as_deref(),
            ))?;
            if pushed.status != 200 {
                return Err(format!("the proxy refused it ({}): {}", pushed.status, pushed.body));
            }
            println!("pushed {}: {}", manifest.name, pushed.body);
            Ok(())
        }
    }
}

/// Replay every fixture under `fixtures` against `wasm`; prints one line per case.
pub fn test(wasm: &Path, fixtures: &Path) -> Result<(), String> {
    let files = fixture::load(fixtures)?;
    let results = runtime()?.block_on(replay::run(wasm, &files))?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        println!("{} {} :: {}", if r.passed() { "ok  " } else { "FAIL" }, r.file, r.case);
        for p in &r.problems {
            println!("       {p}");
        }
    }
    println!("{} cases, {} passed, {failed} failed", results.len(), results.len() - failed);
    if failed == 0 { Ok(()) } else { Err(format!("{failed} fixture case(s) failed")) }
}

fn artifact(dir: &Path, wasm: Option<PathBuf>) -> Result<PathBuf, String> {
    match wasm {
        Some(w) => Ok(w),
        None => Ok(Manifest::load(dir)?.artifact(dir)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))
}

/// The private key is readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}
