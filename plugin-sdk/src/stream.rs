//! [`PlaceholderStream`]: stream text held back per choice until it can no longer be the start of
//! a placeholder, with every complete placeholder replaced by its original. The JavaScript and
//! Python SDKs have the same helper with the same behaviour.

use std::collections::BTreeMap;

use crate::{Delta, EventAction, StreamEvent};

/// Restores placeholders in a streamed answer. A placeholder split over events (`"<EM"`,
/// `"P_1> ok"`) is restored whole and never sent in halves; text that merely looks like the start
/// of one (`"a < b"`) is released as soon as the next character rules it out.
#[derive(Debug, Default)]
pub struct PlaceholderStream {
    /// placeholder -> what it stands for
    placeholders: BTreeMap<String, String>,
    pending: BTreeMap<u32, String>,
}

impl PlaceholderStream {
    /// `placeholders`: (placeholder, original) pairs, as the request phase issued them.
    pub fn new(placeholders: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { placeholders: placeholders.into_iter().collect(), pending: BTreeMap::new() }
    }

    /// Take one event's text for `choice`; returns what is safe to send now, restored.
    /// `finished`: no more text comes for this choice (its finish reason arrived).
    pub fn push(&mut self, choice: u32, text: &str, finished: bool) -> String {
        let mut pending = self.pending.remove(&choice).unwrap_or_default();
        pending.push_str(text);
        let cut = if finished { pending.len() } else { self.safe_len(&pending) };
        let rest = pending.split_off(cut);
        self.pending.insert(choice, rest);
        self.restore(&pending)
    }

    /// The action for one stream event: pass when nothing changed.
    pub fn on_event(&mut self, ev: &StreamEvent) -> EventAction {
        let untouched = self.pending.get(&ev.choice).is_none_or(String::is_empty);
        let out = self.push(ev.choice, &ev.text, ev.finish_reason.is_some());
        let held = self.pending.get(&ev.choice).is_some_and(|p| !p.is_empty());
        if untouched && !held && out == ev.text {
            return EventAction::Pass;
        }
        let deltas = if out.is_empty() { Vec::new() } else { vec![Delta::new(ev.choice, &out)] };
        EventAction::Replace(deltas)
    }

    /// The stream ended: every choice's held text, restored, in choice order.
    pub fn end(&mut self) -> Vec<Delta> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(c, t)| Delta::new(c, &self.restore(&t)))
            .collect()
    }

    /// `text` with every complete placeholder replaced by its original (longest match first).
    pub fn restore(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let hit = self
                .placeholders
                .iter()
                .filter(|(p, _)| !p.is_empty() && rest.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len());
            match hit {
                Some((p, original)) => {
                    out.push_str(original);
                    rest = &rest[p.len()..];
                }
                None => {
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        out
    }

    /// The length of the prefix of `pending` that no later text can turn into a placeholder.
    fn safe_len(&self, pending: &str) -> usize {
        let longest = self.placeholders.keys().map(String::len).max().unwrap_or(0);
        let from = pending.len().saturating_sub(longest.saturating_sub(1));
        (from..pending.len())
            .filter(|&i| pending.is_char_boundary(i))
            .find(|&i| {
                let tail = &pending[i..];
                self.placeholders.keys().any(|p| p.len() > tail.len() && p.starts_with(tail))
            })
            .unwrap_or(pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> PlaceholderStream {
        PlaceholderStream::new([
            ("<EMP_1>".to_string(), "EMP-123456".to_string()),
            ("<PROJ_2>".to_string(), "Bluebird".to_string()),
        ])
    }

    #[test]
    fn placeholders_split_anywhere_are_restored_and_never_half_sent() {
        let whole = "Hi <EMP_1>, 😀 <PROJ_2>. a < b <";
        let want = "Hi EMP-123456, 😀 Bluebird. a < b <";
        let bounds: Vec<usize> = (0..=whole.len()).filter(|&i| whole.is_char_boundary(i)).collect();
        for &i in &bounds {
            for &j in bounds.iter().filter(|&&j| j >= i) {
                let mut s = stream();
                let parts: Vec<String> = [&whole[..i], &whole[i..j], &whole[j..]]
                    .iter()
                    .map(|p| s.push(0, p, false))
                    .collect();
                let tail: String = s.end().into_iter().map(|d| d.text).collect();
                assert_eq!(parts.concat() + &tail, want, "split at {i}, {j}");
                for p in &parts {
                    assert!(!p.contains("<E") && !p.contains("<P"), "half placeholder sent: {p:?}");
                }
            }
        }
    }

    #[test]
    fn on_event_passes_what_it_does_not_touch() {
        let mut s = stream();
        let ev = |text: &str| StreamEvent {
            seq: 0,
            committed: false,
            choice: 0,
            text: text.into(),
            finish_reason: None,
        };
        let text = |a: EventAction| match a {
            EventAction::Pass => "pass".to_string(),
            EventAction::Replace(ds) => {
                ds.into_iter().map(|d| format!("{}:{}", d.choice, d.text)).collect()
            }
            _ => "other".to_string(),
        };
        assert_eq!(text(s.on_event(&ev("plain"))), "pass");
        assert_eq!(text(s.on_event(&ev("a <EM"))), "0:a ");
        assert_eq!(text(s.on_event(&ev("P_1>"))), "0:EMP-123456");
    }
}
