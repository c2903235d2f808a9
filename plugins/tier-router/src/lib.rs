//! The `tier-router` built-in plugin (being written; see plugins/tier-router/README.md).

use switchyard_plugin_sdk::{Changes, Config, Decision, Plugin, Request, export_plugin};

/// The plugin's state for one request.
#[derive(Default)]
struct Skeleton;

impl Plugin for Skeleton {
    fn init(&mut self, _config: Config) -> Result<(), String> {
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        Ok(Decision::Proceed(Changes::new()))
    }
}

export_plugin!(Skeleton);
