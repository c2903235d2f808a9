//! Never returns from `on_request`: proves the per-call epoch deadline.
//! Like every fault plugin here it behaves on the probe request (tag `switchyard.probe`) so it
//! can go live, unless its config has `"on_probe": true`: faults that only some traffic triggers.

use switchyard_plugin_sdk::{Config, Decision, Plugin, Request, export_plugin, is_probe};

#[derive(Default)]
struct BusyLoop {
    on_probe: bool,
}

impl Plugin for BusyLoop {
    fn init(&mut self, config: Config) -> Result<(), String> {
        self.on_probe = config.as_str().contains("\"on_probe\":true");
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        if is_probe(&req) && !self.on_probe {
            return Ok(Decision::pass());
        }
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_plugin!(BusyLoop);
