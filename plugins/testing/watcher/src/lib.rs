//! Watches the response. Whole responses: uppercases choice texts. Streams: uppercases each delta,
//! holds deltas that contain "HOLD" until the stream ends, and asks to escalate to the upstream
//! named in `config.escalate_to` when a text contains "ESCALATE" (and nothing is committed yet).

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Delta, Escalation, EventAction, Plugin, Request, Response,
    ResponseAction, StreamEvent, TextEdit, export_plugin,
};

#[derive(Default)]
struct Watcher {
    escalate_to: Option<String>,
    held: Vec<Delta>,
}

impl Plugin for Watcher {
    fn init(&mut self, config: Config) -> Result<(), String> {
        // Tiny hand-rolled lookup keeps this plugin free of serde.
        let cfg = config.as_str();
        if let Some(rest) = cfg.split("\"escalate_to\":\"").nth(1) {
            self.escalate_to = rest.split('"').next().map(str::to_string);
        }
        Ok(())
    }

    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        Ok(Decision::Proceed(Changes::new().watch_response()))
    }

    fn on_response(&mut self, resp: Response) -> ResponseAction {
        if let Some(up) = self.escalation(resp.choices.iter().map(String::as_str)) {
            return ResponseAction::Escalate(Escalation::to(&up, "watcher saw ESCALATE"));
        }
        let edits = resp
            .choices
            .iter()
            .enumerate()
            .map(|(i, c)| TextEdit::new(i, 0..c.len(), &c.to_uppercase()))
            .collect();
        ResponseAction::Edit(edits)
    }

    fn on_event(&mut self, ev: StreamEvent) -> EventAction {
        if let Some(up) = self.escalation([ev.text.as_str()].into_iter()) {
            // Escalating after commit is refused by the host; tests rely on trying anyway.
            return EventAction::Escalate(Escalation::to(&up, "watcher saw ESCALATE"));
        }
        if ev.text.contains("HOLD") {
            self.held.push(Delta::new(ev.choice, &ev.text));
            return EventAction::Hold;
        }
        EventAction::Replace(vec![Delta::new(ev.choice, &ev.text.to_uppercase())])
    }

    fn on_stream_end(&mut self) -> Vec<Delta> {
        std::mem::take(&mut self.held)
    }
}

impl Watcher {
    fn escalation<'a>(&self, mut texts: impl Iterator<Item = &'a str>) -> Option<String> {
        let up = self.escalate_to.as_ref()?;
        texts.any(|t| t.contains("ESCALATE")).then(|| up.clone())
    }
}

export_plugin!(Watcher);
