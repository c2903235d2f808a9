//! Allocates and touches 1 MiB blocks until something stops it: proves the per-store memory cap.
//! Like every fault plugin here it behaves on the probe request (tag `switchyard.probe`) so it
//! can go live, unless its config has `"on_probe": true`: faults that only some traffic triggers.

use switchyard_plugin_sdk::{Config, Decision, Plugin, Request, export_plugin, is_probe};

#[derive(Default)]
struct MemoryBomb {
    on_probe: bool,
}

impl Plugin for MemoryBomb {
    fn init(&mut self, config: Config) -> Result<(), String> {
        self.on_probe = config.as_str().contains("\"on_probe\":true");
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        if is_probe(&req) && !self.on_probe {
            return Ok(Decision::pass());
        }
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&blocks);
        }
    }
}

export_plugin!(MemoryBomb);
