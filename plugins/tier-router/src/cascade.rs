//! The cascade, pure: judging an answer of the cheap tier (empty, cut off, a refusal, too short,
//! not the JSON that was asked for), and the stream state machine that holds the first
//! `cascade_hold_chars` back, judges them, then releases them or escalates. No host calls here.

use crate::config::RouterConfig;
use crate::features::normalize;

/// How many bytes at the start of an answer are searched for refusal phrases: refusals open an
/// answer, and a long good answer that quotes "I can't help with" later on is not one.
const REFUSAL_WINDOW: usize = 200;

/// What the judge needs, taken from the config and the request once.
#[derive(Debug, Clone)]
pub struct Judge {
    pub min_chars: usize,
    pub hold_chars: usize,
    /// Normalized (lower case, plain apostrophes).
    pub refusals: Vec<String>,
    /// The request asked for `response_format` JSON and the config checks it.
    pub want_json: bool,
}

impl Judge {
    pub fn new(config: &RouterConfig, params: &serde_json::Value) -> Self {
        let format = params["response_format"]["type"].as_str();
        Self {
            min_chars: config.cascade_min_chars,
            hold_chars: config.cascade_hold_chars,
            refusals: config.refusal_phrases.clone(),
            want_json: config.cascade_check_json
                && matches!(format, Some("json_object" | "json_schema")),
        }
    }

    /// A whole answer: `Some(reason)` when it should be escalated.
    pub fn whole(&self, text: &str, finish_reason: Option<&str>) -> Option<&'static str> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Some("empty");
        }
        if finish_reason == Some("length") {
            return Some("length");
        }
        if self.refused(trimmed) {
            return Some("refusal");
        }
        if trimmed.chars().count() < self.min_chars {
            return Some("too_short");
        }
        if self.want_json && serde_json::from_str::<serde_json::Value>(trimmed).is_err() {
            return Some("not_json");
        }
        None
    }

    /// The opening of a longer answer (at least `hold_chars` characters): only a refusal shows.
    pub fn opening(&self, text: &str) -> Option<&'static str> {
        self.refused(text.trim()).then_some("refusal")
    }

    fn refused(&self, text: &str) -> bool {
        let mut end = text.len().min(REFUSAL_WINDOW);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let opening = normalize(&text[..end]);
        self.refusals.iter().any(|p| !p.is_empty() && opening.contains(p.as_str()))
    }
}

/// What to do with one stream event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Pass,
    Hold,
    /// Send this text (all that was held, this event's included) in place of the event.
    Release(String),
    Escalate(&'static str),
}

/// The state of one watched stream (one choice: streams with `n > 1` are not cascaded).
#[derive(Debug, Default)]
pub struct StreamState {
    held: String,
    held_chars: usize,
    /// Judged (released or escalated), or committed by someone else: pass the rest.
    done: bool,
}

impl StreamState {
    pub fn on_event(
        &mut self,
        judge: &Judge,
        seq: u32,
        committed: bool,
        text: &str,
        finish_reason: Option<&str>,
    ) -> Step {
        if self.done {
            return Step::Pass;
        }
        if committed {
            // Something else committed the stream: escalation is no longer possible.
            self.done = true;
            return self.release(text);
        }
        if seq == 0 {
            // A new attempt (the first upstream failed before commit): its text starts over.
            self.held.clear();
            self.held_chars = 0;
        }
        self.held.push_str(text);
        self.held_chars += text.chars().count();
        let verdict = match finish_reason {
            Some(reason) => judge.whole(&self.held, Some(reason)),
            None if self.held_chars >= judge.hold_chars => judge.opening(&self.held),
            None => return Step::Hold,
        };
        self.done = true;
        match verdict {
            Some(reason) => {
                self.held.clear();
                Step::Escalate(reason)
            }
            None => self.release(""),
        }
    }

    /// The stream ended without a finish reason while text was held: let it out unjudged.
    pub fn on_end(&mut self) -> Option<String> {
        if self.done || self.held.is_empty() {
            return None;
        }
        self.done = true;
        Some(std::mem::take(&mut self.held))
    }

    fn release(&mut self, more: &str) -> Step {
        if self.held.is_empty() {
            return Step::Pass;
        }
        let mut text = std::mem::take(&mut self.held);
        text.push_str(more);
        Step::Release(text)
    }
}

#[cfg(test)]
#[path = "cascade_tests.rs"]
mod tests;
