//! The `pii-redact` built-in plugin: finds PII and secrets in request messages and masks them,
//! replaces them with numbered placeholders that are restored in the answer (the default), or
//! refuses the request. See plugins/pii-redact/README.md for formats, config and limits.
//!
//! Layout: [`detect`] (the scanners), [`config`] (settings), [`vault`] (placeholders of one
//! request), [`answer`] (restoring and masking answers, chunk-safe for streams), [`redact`]
//! (the request decision). This file only wires them to the plugin hooks.

mod answer;
mod config;
mod detect;
mod redact;
mod vault;

use switchyard_plugin_sdk::{
    Config, Decision, Delta, EventAction, Plugin, Request, Response, ResponseAction, StreamEvent,
    TOOL_CALL_CHOICE, TextEdit, counter_add, fails_open,
};

use answer::{Fixer, Step, StreamFixer};
use config::Settings;
use vault::Vault;

/// One request's plugin state: the settings, the placeholders issued, and the stream's held text.
#[derive(Default)]
pub struct PiiRedact {
    settings: Settings,
    vault: Vault,
    stream: StreamFixer,
}

/// Whether a stream choice carries a tool call's arguments (JSON text), not choice text.
fn tool_call(choice: u32) -> bool {
    choice & TOOL_CALL_CHOICE != 0
}

/// The answer-side fixer over this request's vault and settings: a free function rather than a
/// method, so its borrows of `vault` and `settings` stay apart from the `&mut stream`.
fn fixer<'a>(settings: &'a Settings, vault: &'a Vault) -> Fixer<'a> {
    Fixer { vault, mask: settings.scan_answer.then_some(&settings.detectors) }
}

impl Plugin for PiiRedact {
    fn init(&mut self, config: Config) -> Result<(), String> {
        self.settings = Settings::from_json(config.as_str())?;
        if fails_open() && !self.settings.allow_fail_open {
            return Err("a redactor that fails open forwards unredacted text whenever it fails: \
                 refusing failure = \"open\" (set allow_fail_open = true to accept that)"
                .into());
        }
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let (decision, counts) = redact::decide(&self.settings, &mut self.vault, &req)?;
        // One name buffer for every type's counter, rather than a `format!` per type.
        let mut name = String::from("found.");
        for (label, n) in &counts {
            name.truncate("found.".len());
            name.push_str(label);
            counter_add(&name, *n);
        }
        if matches!(decision, Decision::Respond(_)) {
            counter_add("blocked", 1);
        }
        Ok(decision)
    }

    fn on_response(&mut self, resp: Response) -> ResponseAction {
        let fix = fixer(&self.settings, &self.vault);
        let mut edits = Vec::new();
        for (i, choice) in resp.choices.iter().enumerate() {
            // Entries after the choices, their slot naming a `field:`, are tool-call arguments.
            let slot = resp.finish_reasons.get(i).and_then(Option::as_deref);
            let json = slot.is_some_and(|f| f.starts_with("field:"));
            for (r, text) in fix.edits(choice, json) {
                edits.push(TextEdit::new(i, r, &text));
            }
        }
        if edits.is_empty() { ResponseAction::Pass } else { ResponseAction::Edit(edits) }
    }

    fn on_event(&mut self, ev: StreamEvent) -> EventAction {
        let fix = fixer(&self.settings, &self.vault);
        let finished = ev.finish_reason.is_some();
        match self.stream.event(fix, ev.choice, &ev.text, finished, tool_call(ev.choice)) {
            Step::Pass => EventAction::Pass,
            Step::Emit(t) if t.is_empty() => EventAction::Replace(Vec::new()),
            Step::Emit(t) => EventAction::Replace(vec![Delta::new(ev.choice, &t)]),
        }
    }

    fn on_stream_end(&mut self) -> Vec<Delta> {
        let fix = fixer(&self.settings, &self.vault);
        self.stream.end(fix, tool_call).into_iter().map(|(c, t)| Delta::new(c, &t)).collect()
    }
}

#[cfg(target_arch = "wasm32")]
switchyard_plugin_sdk::export_plugin!(PiiRedact);
