//! The request decision: scan the messages, then mask, pseudonymize or block, with tags that
//! name the types and counts found (never the values).

use std::collections::BTreeMap;

use switchyard_plugin_sdk::{Changes, Decision, Request, TextEdit};

use crate::config::{Mode, Settings};
use crate::detect::Kind;
use crate::vault::Vault;

/// Text edits one decision may carry (the host's limit): a request with more entities than this
/// cannot be redacted, so the plugin fails (and a fail-closed chain refuses it).
const MAX_EDITS: usize = 4096;

/// Bytes of type names listed in a block message.
const MAX_TYPES_TEXT: usize = 512;

/// Tags a decision may carry (the host allows 64); the rest of the per-type tags are dropped.
const MAX_TAGS: usize = 48;

/// What was found in one request: type label (borrowed from the settings) -> count.
pub type Counts<'a> = BTreeMap<&'a str, u64>;

/// `items` joined by ", ", cut at [`MAX_TYPES_TEXT`] bytes: the host bounds error messages
/// (1 KiB), and many long type names or part paths must not break a refusal.
fn bounded_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut list = items.collect::<Vec<_>>().join(", ");
    if list.len() > MAX_TYPES_TEXT {
        list.truncate(list.floor_char_boundary(MAX_TYPES_TEXT));
        list.push_str(", ...");
    }
    list
}

/// Whether a request entry's text is JSON: the host shows tool-call arguments, parameter
/// schemas and `metadata` as JSON text (docs/plugins.md, "Every text that leaves").
fn json_text(role: &str) -> bool {
    role.strip_prefix("field:").is_some_and(|path| {
        path.ends_with(".arguments")
            || path.ends_with(".parameters")
            || path.ends_with(".schema")
            || path == "metadata"
    })
}

/// The decision for `req`, and the counts per type (for the plugin's counters). An error when
/// the request holds more entities than one decision can edit.
pub fn decide<'s>(
    s: &'s Settings,
    vault: &mut Vault,
    req: &Request,
) -> Result<(Decision, Counts<'s>), String> {
    if s.refuse_binary {
        let binary: Vec<&str> =
            req.messages.iter().filter_map(|m| m.role.strip_prefix("binary:")).collect();
        if !binary.is_empty() {
            let parts = bounded_list(binary.iter().copied());
            let message = format!("request refused: parts that cannot be redacted ({parts})");
            let counts = Counts::from([("binary", binary.len() as u64)]);
            return Ok((Decision::error(400, "policy_violation", &message), counts));
        }
    }
    let labels = &s.detectors.custom_labels;
    // Counted per kind (a few, compared as integers), then keyed by label once: a map of
    // strings looked up per entity cost more than the counting itself.
    let mut per_kind: Vec<(Kind, u64)> = Vec::new();
    let mut found = Vec::new();
    // The bytes of every value, for the vault's buffer.
    let mut bytes = 0;
    for (i, m) in req.messages.iter().enumerate().filter(|(_, m)| s.scans(&m.role)) {
        let spans = s.detectors.scan(&m.content);
        for sp in &spans {
            bytes += sp.end - sp.start;
            match per_kind.iter_mut().find(|(k, _)| *k == sp.kind) {
                Some((_, n)) => *n += 1,
                None => per_kind.push((sp.kind, 1)),
            }
        }
        found.push((i, spans));
    }
    // Each kind's label, looked up once rather than once per entity.
    let kind_labels: Vec<&str> = per_kind.iter().map(|(k, _)| k.label(labels)).collect();
    let mut counts = Counts::new();
    for ((_, n), label) in per_kind.iter().zip(&kind_labels) {
        *counts.entry(label).or_insert(0) += n;
    }
    let total: u64 = counts.values().sum();
    if total > 0 && s.mode == Mode::Block {
        let types = bounded_list(counts.keys().copied());
        let message = format!("request refused: it contains personal data or secrets ({types})");
        return Ok((Decision::error(400, "policy_violation", &message), counts));
    }
    if total > MAX_EDITS as u64 {
        return Err(format!("{total} entities found; at most {MAX_EDITS} can be redacted"));
    }
    let mut changes = Changes::new();
    // What replaces each kind's entities (in `per_kind`'s order), settled once per kind: the
    // vault's type, or the mask.
    let mut types = Vec::new();
    let mut masks = Vec::new();
    if s.mode == Mode::Pseudonymize && total > 0 {
        // A placeholder is `<`, the label, `_`, its number and `>`: a few bytes more than the
        // label (an estimate: the buffer grows if it is short).
        let names: usize =
            per_kind.iter().zip(&kind_labels).map(|((_, n), l)| *n as usize * (l.len() + 6)).sum();
        vault.reserve(total as usize, bytes + names);
        for (label, n) in &counts {
            let t = vault.type_of(label);
            vault.reserve_of(t, *n as usize);
        }
        types = kind_labels.iter().map(|l| vault.type_of(l)).collect();
        for m in &req.messages {
            vault.reserve_existing(&m.content);
        }
    } else if s.mode == Mode::Mask {
        masks = kind_labels.iter().map(|l| format!("[{}]", l.to_ascii_uppercase())).collect();
    }
    if s.mode != Mode::Block {
        // Filled in place, not through `Changes::edit`, which moves the whole `Changes` by
        // value once per entity.
        changes.edits.reserve_exact(total as usize);
        for (i, spans) in &found {
            let text = &req.messages[*i].content;
            let json = json_text(&req.messages[*i].role);
            for sp in spans {
                let j = per_kind.iter().position(|(k, _)| *k == sp.kind).unwrap_or_default();
                let value = &text[sp.start..sp.end];
                let replacement = match (types.get(j), masks.get(j)) {
                    (Some(t), _) if json => vault.placeholder_in_json(*t, value),
                    (Some(t), _) => vault.placeholder_of(*t, value),
                    (None, Some(mask)) => mask.clone(),
                    (None, None) => String::new(),
                };
                // The host bounds texts far below 4 GiB; saturate as `TextEdit::new` does.
                let at = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
                let (message, start, end) = (at(*i), at(sp.start), at(sp.end));
                // Built in place: the placeholder string moves in instead of being copied.
                changes.edits.push(TextEdit { message, start, end, replacement });
            }
        }
    }
    if total > 0 {
        // Pushed as built (`Changes::tag` copies both strings again).
        changes.tags.reserve_exact(1 + counts.len().min(MAX_TAGS));
        changes.tags.push(("pii".to_string(), total.to_string()));
        for (label, n) in counts.iter().take(MAX_TAGS) {
            let mut key = String::with_capacity(4 + label.len());
            key.push_str("pii.");
            key.push_str(label);
            changes.tags.push((key, n.to_string()));
        }
    }
    if s.scan_answer || !vault.is_empty() {
        changes.watch_response = true;
    }
    Ok((Decision::Proceed(changes), counts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_plugin_sdk::{Message, Reply};

    fn req(texts: &[&str]) -> Request {
        Request {
            endpoint: "/v1/chat/completions".into(),
            model: None,
            stream: false,
            messages: texts
                .iter()
                .map(|t| Message { role: "user".into(), content: t.to_string() })
                .collect(),
            params_json: "{}".into(),
            tenant: None,
            headers: vec![],
            tags: vec![],
        }
    }

    fn settings(json: &str) -> Settings {
        Settings::from_json(json).unwrap()
    }

    fn apply(req: &Request, d: &Decision) -> Vec<String> {
        let Decision::Proceed(c) = d else { panic!("{d:?}") };
        let mut texts: Vec<String> = req.messages.iter().map(|m| m.content.clone()).collect();
        let mut edits = c.edits.clone();
        edits.sort_by_key(|e| std::cmp::Reverse((e.message, e.start)));
        for e in edits {
            texts[e.message as usize]
                .replace_range(e.start as usize..e.end as usize, &e.replacement);
        }
        texts
    }

    #[test]
    fn pseudonymize_numbers_per_type_and_reuses() {
        let r = req(&["a@b.io and c@d.io", "again a@b.io, call 555-123-4567"]);
        let mut v = Vault::default();
        let s = settings("{}");
        let (d, counts) = decide(&s, &mut v, &r).unwrap();
        assert_eq!(apply(&r, &d), ["<EMAIL_1> and <EMAIL_2>", "again <EMAIL_1>, call <PHONE_1>"]);
        assert_eq!(counts["email"], 3);
        let Decision::Proceed(c) = d else { unreachable!() };
        assert!(c.watch_response);
        assert!(c.tags.contains(&("pii".into(), "4".into())));
        assert!(c.tags.contains(&("pii.email".into(), "3".into())));
    }

    #[test]
    fn new_types_get_placeholders_and_tags() {
        let r = req(&[
            "Hi, I'm Jane Doe. DOB: 15/03/1985. I live at 221B Baker Street, London NW1 6XE.",
        ]);
        let s = settings("{}");
        let (d, counts) = decide(&s, &mut Vault::default(), &r).unwrap();
        assert_eq!(apply(&r, &d), ["Hi, I'm <NAME_1>. DOB: <DOB_1>. I live at <ADDRESS_1>."]);
        assert_eq!((counts["name"], counts["dob"], counts["address"]), (1, 1, 1));
        let Decision::Proceed(c) = d else { unreachable!() };
        assert!(c.tags.contains(&("pii.address".into(), "1".into())));
        assert!(c.tags.contains(&("pii.dob".into(), "1".into())));
        let off = settings(r#"{"auto_names": false, "types": ["email", "dob"]}"#);
        let (d, _) = decide(&off, &mut Vault::default(), &r).unwrap();
        assert_eq!(
            apply(&r, &d),
            ["Hi, I'm Jane Doe. DOB: <DOB_1>. I live at 221B Baker Street, London NW1 6XE."]
        );
    }

    #[test]
    fn mask_does_not_watch() {
        let r = req(&["ssn 123-45-6789"]);
        let (d, _) = decide(&settings(r#"{"mode":"mask"}"#), &mut Vault::default(), &r).unwrap();
        assert_eq!(apply(&r, &d), ["ssn [SSN]"]);
        let Decision::Proceed(c) = d else { unreachable!() };
        assert!(!c.watch_response);
    }

    #[test]
    fn block_names_types_not_values() {
        let r = req(&["mail a@b.io, ip 10.0.0.1"]);
        let (d, _) = decide(&settings(r#"{"mode":"block"}"#), &mut Vault::default(), &r).unwrap();
        let Decision::Respond(Reply::Error(e)) = d else { panic!("{d:?}") };
        assert_eq!(e.status, 400);
        assert!(e.message.contains("email, ip") && !e.message.contains("a@b.io"), "{}", e.message);
        let clean = req(&["nothing here"]);
        let (d, _) =
            decide(&settings(r#"{"mode":"block"}"#), &mut Vault::default(), &clean).unwrap();
        assert_eq!(apply(&clean, &d), ["nothing here"]);
    }

    #[test]
    fn too_many_entities_is_an_error() {
        let text: String = (0..5000).map(|i| format!("u{i}@example.com ")).collect();
        assert!(decide(&settings("{}"), &mut Vault::default(), &req(&[&text])).is_err());
    }

    #[test]
    fn values_in_json_entries_are_kept_decoded() {
        let mut r = req(&["hi"]);
        // The arguments as the host shows them (JSON text): the value `PW-a"b\c` is escaped.
        r.messages.push(Message {
            role: "field:messages[1].tool_calls[0].function.arguments".into(),
            content: r#"{"pw":"PW-a\"b\\c","to":"ann@example.com"}"#.into(),
        });
        // Letters, or an escape (as a pattern for JSON text would be written).
        let config = serde_json::json!({"custom_patterns": {"pw": r"PW-(?:[a-z]|\\.)+"}});
        let mut v = Vault::default();
        let (d, _) = decide(&settings(&config.to_string()), &mut v, &r).unwrap();
        assert_eq!(apply(&r, &d)[1], r#"{"pw":"<PW_1>","to":"<EMAIL_1>"}"#);
        assert_eq!(v.restore("<PW_1>"), r#"PW-a"b\c"#, "decoded for text");
        let (_, o) = v.at("<PW_1>", 0).unwrap();
        assert_eq!(o.in_json(), r#"PW-a\"b\\c"#, "escaped for JSON");
        assert!(json_text("field:tools[0].function.parameters") && json_text("field:metadata"));
        assert!(!json_text("field:messages[0].name") && !json_text("user"));
    }

    #[test]
    fn roles_limit_scanning() {
        let mut r = req(&["a@b.io", "c@d.io"]);
        r.messages[0].role = "system".into();
        let (d, _) = decide(&settings(r#"{"roles":["user"]}"#), &mut Vault::default(), &r).unwrap();
        assert_eq!(apply(&r, &d), ["a@b.io", "<EMAIL_1>"]);
    }

    #[test]
    fn field_entries_are_scanned_whatever_roles_say_and_binary_parts_can_be_refused() {
        let mut r = req(&["hi"]);
        r.messages.push(Message {
            role: "field:messages[0].tool_calls[0].function.arguments".into(),
            content: r#"{"to":"ann@example.com"}"#.into(),
        });
        r.messages
            .push(Message { role: "binary:messages[0].content[1]".into(), content: String::new() });
        let s = settings(r#"{"roles":["user"]}"#);
        let (d, counts) = decide(&s, &mut Vault::default(), &r).unwrap();
        assert_eq!(counts.get("email"), Some(&1), "{counts:?}");
        assert!(!apply(&r, &d)[1].contains("ann@example.com"));

        let s = settings(r#"{"refuse_binary":true}"#);
        let (d, _) = decide(&s, &mut Vault::default(), &r).unwrap();
        let Decision::Respond(Reply::Error(e)) = d else { panic!("{d:?}") };
        assert_eq!((e.status, e.kind.as_str()), (400, "policy_violation"));
        assert!(e.message.contains("messages[0].content[1]"), "{}", e.message);
        r.messages.pop();
        let (d, _) = decide(&s, &mut Vault::default(), &r).unwrap();
        assert!(matches!(d, Decision::Proceed(_)), "no binary part: proceeds");
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use switchyard_plugin_sdk::Message;

    /// `PII_TEXT=file cargo test --release -p pii-redact --target x86_64-unknown-linux-gnu --
    /// --ignored --nocapture decide`: the whole decision on one text, natively.
    #[test]
    #[ignore]
    fn time_decide() {
        let Ok(path) = std::env::var("PII_TEXT") else { return };
        let text = std::fs::read_to_string(path).unwrap();
        let req = Request {
            endpoint: "/v1/chat/completions".into(),
            model: None,
            stream: false,
            messages: vec![Message { role: "user".into(), content: text.clone() }],
            params_json: "{}".into(),
            tenant: None,
            headers: vec![],
            tags: vec![],
        };
        let s = Settings::from_json("{}").unwrap();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let spans = s.detectors.scan(&text).len();
            let scan = t.elapsed();
            let t = std::time::Instant::now();
            let (d, _) = decide(&s, &mut Vault::default(), &req).unwrap();
            println!("scan {scan:?} ({spans}); decide {:?}", t.elapsed());
            std::hint::black_box(d);
        }
    }
}
