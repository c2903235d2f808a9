//! Never returns from `on_request`: proves the per-call epoch deadline.
//! Like every fault plugin here it behaves on the probe request (tag `switchyard.probe`) so it
//! can go live, unless its config has `"on_probe": true`: faults that only some traffic triggers.
//! With `"trigger": "word"` it loops only on requests whose text contains that word, so a test can
//! show that other requests keep being served while some are stuck.

use switchyard_plugin_sdk::{Config, Decision, Plugin, Request, export_plugin, is_probe};

#[derive(Default)]
struct BusyLoop {
    on_probe: bool,
    trigger: Option<String>,
}

impl Plugin for BusyLoop {
    fn init(&mut self, config: Config) -> Result<(), String> {
        let cfg = config.as_str();
        self.on_probe = cfg.contains("\"on_probe\":true");
        // Tiny hand-rolled lookup keeps this plugin free of serde.
        self.trigger = cfg
            .split("\"trigger\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string);
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        if is_probe(&req) && !self.on_probe {
            return Ok(Decision::pass());
        }
        let triggered =
            |word: &String| req.messages.iter().any(|m| m.content.contains(word.as_str()));
        if self.trigger.as_ref().is_some_and(|w| !triggered(w)) {
            return Ok(Decision::pass());
        }
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_plugin!(BusyLoop);
