//! Returns the invalid decision that its config names (`{"kind": "..."}`): an edit out of bounds,
//! an edit off a char boundary, overlapping edits, an unknown upstream, a forbidden header, a bad
//! status, or an `Err`. Proves that the host validates every decision.
//! Like every fault plugin here it behaves on the probe request (tag `switchyard.probe`) so it
//! can go live, unless its config has `"on_probe": true`: faults that only some traffic triggers.

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Plugin, Request, TextEdit, export_plugin, is_probe,
};

#[derive(Default, serde::Deserialize)]
struct Garbage {
    kind: String,
    #[serde(default)]
    on_probe: bool,
}

impl Plugin for Garbage {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        if is_probe(&req) && !self.on_probe {
            return Ok(Decision::pass());
        }
        let len = req.messages.first().map_or(0, |m| m.content.len());
        let changes = match self.kind.as_str() {
            "out-of-bounds" => Changes::new().edit(TextEdit::new(0, 0..len + 10, "x")),
            "bad-message" => Changes::new().edit(TextEdit::new(99, 0..0, "x")),
            // The probe and the tests send text whose second byte is inside a multi-byte char.
            "char-boundary" => Changes::new().edit(TextEdit::new(0, 1..2, "x")),
            "overlap" => {
                Changes::new().edit(TextEdit::new(0, 0..2, "a")).edit(TextEdit::new(0, 1..3, "b"))
            }
            "unknown-upstream" => Changes::new().route("no-such-upstream", None),
            "forbidden-header" => Changes::new().header("authorization", "Bearer stolen"),
            "bad-status" => return Ok(Decision::error(200, "x", "a 200 is not an error")),
            "huge" => Changes::new().tag("huge", &"x".repeat(2 << 20)),
            "error" => return Err("garbage plugin: refusing as configured".to_string()),
            other => return Err(format!("garbage plugin: unknown kind {other}")),
        };
        Ok(Decision::Proceed(changes))
    }
}

export_plugin!(Garbage);
