//! `switchyard-plugin.toml`: what `switchyard plugin new` writes at the top of a plugin directory
//! and the other subcommands read: the plugin's name, language and signed version.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The manifest's file name.
pub const FILE: &str = "switchyard-plugin.toml";

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Js,
    Python,
}

/// A plugin directory's manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: its `[[plugin]] name` in the proxy config, and what a signature binds.
    pub name: String,
    pub language: Language,
    /// The version a signature carries; raise it for every release (older ones are refused).
    #[serde(default = "one")]
    pub version: u64,
    /// The source file that `build` compiles (JS and Python; Rust builds the crate).
    #[serde(default)]
    pub entry: Option<String>,
}

fn one() -> u64 {
    1
}

impl Manifest {
    /// Read `<dir>/switchyard-plugin.toml`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (run this in a plugin directory made by `switchyard plugin new`)",
                path.display()
            )
        })?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Where `build` writes the component: `<dir>/build/<name>.wasm`.
    pub fn artifact(&self, dir: &Path) -> PathBuf {
        dir.join("build").join(format!("{}.wasm", self.name.replace('-', "_")))
    }
}
