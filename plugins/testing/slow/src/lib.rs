//! Legal but slow: spins for `config.ms` milliseconds (default 2) on the host clock, then tags the
//! request `slow = done`. Proves that a plugin under its deadline is not cut off.

use switchyard_plugin_sdk::{Changes, Config, Decision, Plugin, Request, export_plugin, now_ns};

#[derive(serde::Deserialize)]
struct Slow {
    #[serde(default = "default_ms")]
    ms: u64,
}

fn default_ms() -> u64 {
    2
}

impl Default for Slow {
    fn default() -> Self {
        Self { ms: default_ms() }
    }
}

impl Plugin for Slow {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        let until = now_ns() + self.ms * 1_000_000;
        while now_ns() < until {
            std::hint::spin_loop();
        }
        Ok(Decision::Proceed(Changes::new().tag("slow", "done")))
    }
}

export_plugin!(Slow);
