//! Panics (with panic = "abort", an `unreachable` trap): in `init` when the config is
//! `{"in": "init"}`, in `on_request` otherwise (but not on the probe request, unless
//! `"on_probe": true`).

use switchyard_plugin_sdk::{Config, Decision, Plugin, Request, export_plugin, is_probe};

#[derive(Default)]
struct Trap {
    on_probe: bool,
}

impl Plugin for Trap {
    fn init(&mut self, config: Config) -> Result<(), String> {
        if config.as_str().contains("\"init\"") {
            panic!("trap plugin: panicking in init as configured");
        }
        self.on_probe = config.as_str().contains("\"on_probe\":true");
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        if is_probe(&req) && !self.on_probe {
            return Ok(Decision::pass());
        }
        panic!("trap plugin: panicking in on_request");
    }
}

export_plugin!(Trap);
