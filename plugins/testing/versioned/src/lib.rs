//! Stamps `config.version` on every request as tag `version` and header `x-plugin-version`, so a
//! hot-swap test can tell which version served each request.

use switchyard_plugin_sdk::{Changes, Config, Decision, Plugin, Request, export_plugin};

#[derive(Default, serde::Deserialize)]
struct Versioned {
    version: String,
}

impl Plugin for Versioned {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        Ok(Decision::Proceed(
            Changes::new().tag("version", &self.version).header("x-plugin-version", &self.version),
        ))
    }
}

export_plugin!(Versioned);
