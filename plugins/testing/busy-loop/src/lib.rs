//! Never returns from `on_request`: proves the per-call epoch deadline.

use switchyard_plugin_sdk::{Decision, Plugin, Request, export_plugin};

#[derive(Default)]
struct BusyLoop;

impl Plugin for BusyLoop {
    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_plugin!(BusyLoop);
