//! Stamps a version on every request as tag `version` and header `x-plugin-version`, so a hot-swap
//! test can tell which version served each request. The version is `config.version` when set, else
//! the [`STAMP`] compiled into the file: tests patch those bytes in the .wasm (same length) to make
//! any number of distinct files of one plugin without rebuilding it, as an upload or a changed file
//! in `plugins.dir` would be.

use switchyard_plugin_sdk::{Changes, Config, Decision, Plugin, Request, export_plugin};

/// The version of this file when the config names none. Exactly these bytes appear once in the
/// component; `switchyard_tests::wasm::stamped` rewrites the four digits.
pub static STAMP: &str = "switchyard-stamp-0000";

#[derive(Default, serde::Deserialize)]
struct Versioned {
    #[serde(default)]
    version: Option<String>,
}

impl Plugin for Versioned {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        let version = self.version.as_deref().unwrap_or(std::hint::black_box(STAMP));
        Ok(Decision::Proceed(
            Changes::new().tag("version", version).header("x-plugin-version", version),
        ))
    }
}

export_plugin!(Versioned);
