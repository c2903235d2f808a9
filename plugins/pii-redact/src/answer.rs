//! The answer side: placeholders go back to their original values (pseudonymize), PII the model
//! wrote itself is masked (`scan_answer`), for whole answers and chunk-safely for streams.
//!
//! Streams hold text back per choice until it is safe to release: without `scan_answer`, from a
//! `<` that could still become a placeholder (at most one placeholder's length); with
//! `scan_answer`, the current line (an entity never spans a newline, except a private key block,
//! held through its END line). Held text is released when the choice finishes or the stream ends.
//!
//! Tool-call arguments (a whole answer's `field:` entries, a stream's tool-call choices) are JSON
//! text: placeholders there are restored JSON-escaped (see [`crate::vault::Original::in_json`]),
//! also when a placeholder arrives split over several argument fragments.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::detect::Detectors;
use crate::vault::Vault;

/// What the answer side does, for one request.
#[derive(Debug, Clone, Copy)]
pub struct Fixer<'a> {
    pub vault: &'a Vault,
    /// Mask PII in the answer with these detectors (`scan_answer`), before restoring.
    pub mask: Option<&'a Detectors>,
}

impl Fixer<'_> {
    /// The edits that fix a whole text: masks and restored placeholders, sorted, disjoint.
    /// `json`: the text is JSON (tool-call arguments), so values are written JSON-escaped.
    pub fn edits(&self, text: &str, json: bool) -> Vec<(Range<usize>, String)> {
        let mut out = Vec::new();
        let spans = self.mask.map(|d| d.scan(text)).unwrap_or_default();
        let mut last = 0;
        for s in &spans {
            self.restore_edits(text, last..s.start, json, &mut out);
            let labels = self.mask.map(|d| d.custom_labels.as_slice()).unwrap_or_default();
            out.push((s.start..s.end, format!("[{}]", s.kind.label(labels).to_ascii_uppercase())));
            last = s.end;
        }
        self.restore_edits(text, last..text.len(), json, &mut out);
        out
    }

    fn restore_edits(
        &self,
        text: &str,
        r: Range<usize>,
        json: bool,
        out: &mut Vec<(Range<usize>, String)>,
    ) {
        let Some(part) = text.get(r.clone()) else { return };
        for (at, original) in self.vault.occurrences(part) {
            let value =
                if json { original.in_json().into_owned() } else { original.text.to_string() };
            out.push((r.start + at.start..r.start + at.end, value));
        }
    }

    /// The whole text, fixed (`json`: as for [`Self::edits`]).
    pub fn apply(&self, text: &str, json: bool) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (r, replacement) in self.edits(text, json) {
            out.push_str(&text[last..r.start]);
            out.push_str(&replacement);
            last = r.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// How much of `pending` is safe to release now (a char boundary).
    fn safe_len(&self, pending: &str) -> usize {
        if self.mask.is_some() {
            let line_end = pending.rfind('\n').map_or(0, |i| i + 1);
            let head = &pending[..line_end];
            return match head.rfind("-----BEGIN ") {
                Some(b) if !head[b..].contains("-----END ") => b,
                _ => line_end,
            };
        }
        // The earliest `<` that could still grow into a placeholder (only the last placeholder's
        // length of text can).
        let b = pending.as_bytes();
        let from = b.len().saturating_sub(self.vault.longest());
        (from..b.len())
            .find(|&i| b[i] == b'<' && self.vault.could_start(&pending[i..]))
            .unwrap_or(b.len())
    }
}

/// What to do with one stream event.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the event's text as it came.
    Pass,
    /// Send this text instead (empty: nothing now).
    Emit(String),
}

/// The per-choice text held back in a stream.
#[derive(Debug, Default)]
pub struct StreamFixer {
    pending: BTreeMap<u32, String>,
}

impl StreamFixer {
    /// One event's text for `choice`; `finished` when it carries the choice's finish reason (no
    /// more text will come for it, so everything held is released). `json`: the choice's text
    /// is JSON (a tool call's arguments).
    pub fn event(
        &mut self,
        fix: Fixer<'_>,
        choice: u32,
        text: &str,
        finished: bool,
        json: bool,
    ) -> Step {
        let pending = self.pending.entry(choice).or_default();
        let untouched = pending.is_empty();
        pending.push_str(text);
        let cut = if finished { pending.len() } else { fix.safe_len(pending) };
        let rest = pending.split_off(cut);
        let released = std::mem::replace(pending, rest);
        let out = fix.apply(&released, json);
        if untouched && pending.is_empty() && out == text {
            return Step::Pass;
        }
        Step::Emit(out)
    }

    /// The stream ended: every choice's held text, fixed, in choice order (`json` says which
    /// choices are JSON text).
    pub fn end(&mut self, fix: Fixer<'_>, json: impl Fn(u32) -> bool) -> Vec<(u32, String)> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(c, t)| (c, fix.apply(&t, json(c))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Kind;

    fn vault() -> Vault {
        let mut v = Vault::default();
        v.placeholder("email", "jane@example.com");
        v.placeholder("phone", "+44 20 7946 0958");
        v
    }

    /// Streams `pieces`, checking that what was sent so far is always a prefix of `want`.
    fn stream(fix: Fixer<'_>, pieces: &[&str], want: &str) {
        let mut s = StreamFixer::default();
        let mut sent = String::new();
        for p in pieces {
            match s.event(fix, 0, p, false, false) {
                Step::Pass => sent.push_str(p),
                Step::Emit(t) => sent.push_str(&t),
            }
            assert!(want.starts_with(&sent), "leak: {sent:?} after {pieces:?}");
        }
        for (_, t) in s.end(fix, |_| false) {
            sent.push_str(&t);
        }
        assert_eq!(sent, want, "{pieces:?}");
    }

    #[test]
    fn placeholders_split_anywhere_are_restored() {
        let v = vault();
        let fix = Fixer { vault: &v, mask: None };
        let text = "Mail <EMAIL_1> or call <PHONE_1>; <EMAIL_9> and a < b <EM.";
        let want = "Mail jane@example.com or call +44 20 7946 0958; <EMAIL_9> and a < b <EM.";
        for i in 0..=text.len() {
            for j in i..=text.len() {
                stream(fix, &[&text[..i], &text[i..j], &text[j..]], want);
            }
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        stream(fix, &bytes.iter().map(String::as_str).collect::<Vec<_>>(), want);
    }

    #[test]
    fn every_type_split_at_every_byte_is_restored() {
        let mut v = Vault::default();
        let values = [
            ("name", "Jane Doe"),
            ("address", "221B Baker Street, London NW1 6XE"),
            ("dob", "15/03/1985"),
            ("phone", "+46 (0)8 123 456 78"),
            ("card", "6011 0000 0000 0004"),
            ("iban", "de89 3704 0044 0532 0130 00"),
        ];
        let mut text = String::from("Reply: ");
        let mut want = text.clone();
        for (label, value) in values {
            let p = v.placeholder(label, value);
            text.push_str(&format!("{p}, "));
            want.push_str(&format!("{value}, "));
        }
        let fix = Fixer { vault: &v, mask: None };
        for i in 0..=text.len() {
            stream(fix, &[&text[..i], &text[i..]], &want);
        }
        let bytes: Vec<String> = text.chars().map(String::from).collect();
        stream(fix, &bytes.iter().map(String::as_str).collect::<Vec<_>>(), &want);
    }

    #[test]
    fn tool_call_arguments_get_values_json_escaped_split_anywhere() {
        let mut v = Vault::default();
        let value = "PW-a\"b\\c\n-----END";
        let p = v.placeholder("pw", value);
        let e = v.placeholder("email", "jane@example.com");
        let fix = Fixer { vault: &v, mask: None };
        let args = format!(r#"{{"secret":"{p}","to":"{e}","note":"<b>"}}"#);
        let want = serde_json::json!({"secret": value, "to": "jane@example.com", "note": "<b>"});
        let whole = fix.apply(&args, true);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&whole).unwrap(), want, "{whole}");
        assert!(fix.apply(&args, false).contains(value), "plain text gets the value as is");
        // Streamed as fragments of a tool call's arguments: cut anywhere, the client only ever
        // holds a prefix of the escaped arguments, and the whole parses to the values.
        let run = |pieces: &[&str]| {
            let mut s = StreamFixer::default();
            let mut sent = String::new();
            for piece in pieces {
                match s.event(fix, 1 << 31, piece, false, true) {
                    Step::Pass => sent.push_str(piece),
                    Step::Emit(t) => sent.push_str(&t),
                }
                assert!(whole.starts_with(&sent), "leak: {sent:?} after {pieces:?}");
            }
            for (c, t) in s.end(fix, |c| c & 1 << 31 != 0) {
                assert_eq!(c, 1 << 31);
                sent.push_str(&t);
            }
            assert_eq!(sent, whole, "{pieces:?}");
        };
        for i in 0..=args.len() {
            run(&[&args[..i], &args[i..]]);
        }
        let bytes: Vec<String> = args.chars().map(String::from).collect();
        run(&bytes.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn plain_text_passes_untouched() {
        let v = vault();
        let fix = Fixer { vault: &v, mask: None };
        let mut s = StreamFixer::default();
        assert_eq!(s.event(fix, 0, "hello ", false, false), Step::Pass);
        assert_eq!(s.event(fix, 0, "wor<E", false, false), Step::Emit("wor".into()));
        assert_eq!(s.event(fix, 1, "other", false, false), Step::Pass, "choices are separate");
        assert_eq!(
            s.event(fix, 0, "MAIL", true, false),
            Step::Emit("<EMAIL".into()),
            "finish releases"
        );
        assert!(s.end(fix, |_| false).is_empty());
    }

    #[test]
    fn scan_answer_masks_by_line() {
        let v = vault();
        let d = Detectors { enabled: vec![Kind::Email], ..Detectors::default() };
        let fix = Fixer { vault: &v, mask: Some(&d) };
        let text = "write bob@corp.io\nor <EMAIL_1>\n";
        let want = "write [EMAIL]\nor jane@example.com\n";
        for i in 0..=text.len() {
            stream(fix, &[&text[..i], &text[i..]], want);
        }
        assert_eq!(fix.apply("x bob@corp.io <EMAIL_1>", false), "x [EMAIL] jane@example.com");
    }
}
