//! Panics (with panic = "abort", an `unreachable` trap): in `init` when the config is
//! `{"in": "init"}`, in `on_request` otherwise.

use switchyard_plugin_sdk::{Config, Decision, Plugin, Request, export_plugin};

#[derive(Default)]
struct Trap;

impl Plugin for Trap {
    fn init(&mut self, config: Config) -> Result<(), String> {
        if config.as_str().contains("\"init\"") {
            panic!("trap plugin: panicking in init as configured");
        }
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        panic!("trap plugin: panicking in on_request");
    }
}

export_plugin!(Trap);
