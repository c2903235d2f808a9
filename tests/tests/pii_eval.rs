//! The PII evaluation checks itself (`switchyard_tests::pii_eval`) on a small seeded split of its
//! corpus (`tests/data/pii-eval-selftest.jsonl`, made by `scripts/pii-corpus.sh selftest
//! --messages 40 --natural-words 0`): wrong offsets are refused on load; a perfect redactor scores
//! recall and precision 1, none scores 0, one that leaves a character scores partial; a restore
//! that lies does not align; and the real plugin's output, with the shipped config, aligns for
//! every record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use switchyard::plugin::{
    FailurePolicy, PluginEngine, PluginEntry, PluginRegistry, PluginsSection,
};
use switchyard_tests::pii_eval::{self, Record, Redaction, Scores, align, placeholders};
use switchyard_tests::wasm;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/pii-eval-selftest.jsonl")
}

fn records() -> Vec<Record> {
    pii_eval::load(&fixture()).expect("the fixture loads")
}

/// `text` with the spans `keep(entity)` (byte range) replaced by numbered placeholders, and the
/// restore map for them.
fn redact_with(
    r: &Record,
    span: impl Fn(&pii_eval::Entity) -> Option<(usize, usize)>,
) -> (String, HashMap<String, String>) {
    let mut out = String::new();
    let mut restore = HashMap::new();
    let mut last = 0;
    for (i, e) in r.entities.iter().enumerate() {
        let Some((s, end)) = span(e) else { continue };
        let token = format!("<{}_{}>", e.kind.to_ascii_uppercase(), i + 1);
        out.push_str(&r.text[last..s]);
        out.push_str(&token);
        restore.insert(token, r.text[s..end].to_string());
        last = end;
    }
    out.push_str(&r.text[last..]);
    (out, restore)
}

fn score(records: &[Record], span: impl Fn(&pii_eval::Entity) -> Option<(usize, usize)>) -> Scores {
    let mut scores = Scores::default();
    for r in records {
        let (out, restore) = redact_with(r, &span);
        let reds = align(&r.text, &out, &restore).expect("aligns");
        scores.add(r, Ok(&reds));
    }
    scores
}

#[test]
fn the_fixture_covers_every_type_and_loads() {
    let records = records();
    let scores = score(&records, |_| None);
    let types: Vec<&str> = scores.by_type.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        ["address", "card", "dob", "email", "iban", "ip", "name", "phone", "secret", "ssn"]
    );
}

#[test]
fn wrong_offsets_are_refused_on_load() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (what, edit) in [("shifted", r#""start": "#), ("value", r#""value": ""#)] {
        // Move the first entity's start one byte on, or change the first char of its value.
        let at = text.find(edit).unwrap() + edit.len();
        let mut bad = text.clone();
        if what == "shifted" {
            let end = at + bad[at..].find(',').unwrap();
            let n: usize = bad[at..end].parse().unwrap();
            bad.replace_range(at..end, &(n + 1).to_string());
        } else {
            bad.insert(at, 'Z');
        }
        let path: &Path = &dir.path().join(format!("{what}.jsonl"));
        std::fs::write(path, bad).unwrap();
        let err = pii_eval::load(path).expect_err(what);
        assert!(format!("{err:#}").contains("entity"), "{what}: {err:#}");
    }
}

#[test]
fn a_perfect_redactor_scores_one_and_none_scores_zero() {
    let records = records();
    let perfect = score(&records, |e| Some((e.start, e.end)));
    for (t, c) in &perfect.by_type {
        assert_eq!((c.caught, c.typed), (c.support, c.support), "{t}");
        assert!(c.support > 0, "{t}");
    }
    for (t, f) in &perfect.flags {
        assert_eq!(f.fp, 0, "{t}");
        assert!(f.tp > 0, "{t}");
    }
    assert_eq!(perfect.messages_clean, perfect.messages_with_pii);
    assert!(perfect.messages_with_pii > 0);
    let none = score(&records, |_| None);
    assert_eq!(none.messages_clean, 0);
    for (t, c) in &none.by_type {
        assert_eq!((c.caught, c.partial), (0, 0), "{t}");
    }
    assert!(none.flags.is_empty());
    assert_eq!(none.misses.len() as u64, none.by_type.values().map(|c| c.support).sum::<u64>());
}

#[test]
fn leaving_one_character_is_partial_and_an_extra_span_is_a_false_positive() {
    let records = records();
    // Every entity but its last char (entities end in a letter or digit, except a PEM key's `-`).
    let short = score(&records, |e| {
        let last = e.value.char_indices().rev().find(|(_, c)| c.is_alphanumeric())?.0;
        (last > 0).then(|| (e.start, e.start + last))
    });
    for (t, c) in &short.by_type {
        assert_eq!(c.caught, 0, "{t}");
        assert!(c.partial > 0, "{t}");
    }
    // A redaction over text no entity holds: the first word of a record that has no entity there.
    let r = records.iter().find(|r| r.entities.first().is_some_and(|e| e.start > 8)).unwrap();
    let end = r.text.find(|c: char| !c.is_alphanumeric()).unwrap();
    assert!(end > 0 && end <= r.entities[0].start, "{:?}", &r.text[..20]);
    let mut scores = Scores::default();
    let red = Redaction { start: 0, end, kind: "name".into() };
    scores.add(r, Ok(&[red]));
    assert_eq!(scores.flags["name"].fp, 1);
    assert_eq!(scores.flags["name"].tp, 0);
}

#[test]
fn a_restore_that_does_not_give_the_input_back_does_not_align() {
    let records = records();
    let r = records.iter().find(|r| !r.entities.is_empty()).unwrap();
    let (out, mut restore) = redact_with(r, |e| Some((e.start, e.end)));
    assert!(align(&r.text, &out, &restore).is_ok());
    let token = restore.keys().next().unwrap().clone();
    restore.insert(token.clone(), "something else".into());
    assert!(align(&r.text, &out, &restore).is_err());
    // A placeholder-shaped text the plugin did not issue stays text.
    assert_eq!(placeholders("a <EMAIL_1> b <x> <PHONE_> <IP_22>"), [(2, 11), (27, 34)]);
    let none = HashMap::new();
    assert_eq!(align("a <EMAIL_1>", "a <EMAIL_1>", &none), Ok(vec![]));
}

#[tokio::test]
async fn the_plugin_output_aligns_for_every_record() {
    let records = records();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(wasm::PII_REDACT, dir.path().join("p.wasm")).unwrap();
    let toml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../switchyard.toml");
    let mut e = PluginEntry::new("pii-redact", "p.wasm", FailurePolicy::Closed);
    e.timeout_ms = 1000; // the most a config allows: a loaded CI machine must not fail this
    e.config = pii_eval::shipped_config(&toml).unwrap();
    let engine = PluginEngine::new(switchyard_tests::test_engine_limits()).unwrap();
    let reg =
        PluginRegistry::new(engine, PluginsSection::new(dir.path()), vec![e], Default::default());
    reg.reload().await.unwrap();
    let mut scores = Scores::default();
    let mut redactions = 0;
    for batch in records.chunks(8) {
        let texts: Vec<&str> = batch.iter().map(|r| r.text.as_str()).collect();
        for (r, (out, reds)) in batch.iter().zip(pii_eval::redact(&reg, &texts).await.unwrap()) {
            let reds = reds.unwrap_or_else(|e| panic!("{}: {e}\n{out}", r.id));
            redactions += reds.len();
            scores.add(r, Ok(&reds));
        }
    }
    assert_eq!(scores.unaligned, 0);
    assert!(redactions > 0, "the shipped config redacts something in 40 messages");
    let support: u64 = scores.by_type.values().map(|c| c.support).sum();
    let entities = records.iter().map(|r| r.entities.len() as u64).sum::<u64>();
    assert_eq!(support, entities);
    let tp_fp: u64 = scores.flags.values().map(|f| f.tp + f.fp).sum();
    assert_eq!(tp_fp, redactions as u64);
}
