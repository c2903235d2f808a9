//! Allocates and touches 1 MiB blocks until something stops it: proves the per-store memory cap.

use switchyard_plugin_sdk::{Decision, Plugin, Request, export_plugin};

#[derive(Default)]
struct MemoryBomb;

impl Plugin for MemoryBomb {
    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&blocks);
        }
    }
}

export_plugin!(MemoryBomb);
