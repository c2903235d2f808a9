//! The detectors: hand-rolled byte scanners for each built-in entity type, the configured word
//! lists and custom patterns, and the overlap resolution that turns their hits into one sorted,
//! non-overlapping list of spans.

mod address;
mod contact;
// Generated tables carry columns not every detector reads (a region's name, local lengths).
#[allow(dead_code)]
mod data;
mod dob;
mod fields;
mod iban;
mod iin;
mod index;
mod net;
mod numbers;
mod person;
mod phone;
mod scan;
#[cfg(test)]
mod scan_tests;
mod secrets;
mod swar;
mod words;

pub use words::{Custom, WordList};

/// What a span holds. `Custom(i)` indexes [`Detectors::custom_labels`]: 0 is the deny-words type
/// `custom`, the rest are the configured custom patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A secret (API key, token, private key block, JWT). Listed first: highest priority.
    Secret,
    Card,
    Iban,
    Ssn,
    Email,
    Ip,
    /// A date of birth (a date after a cue).
    Dob,
    /// Before phones: an address holds postcodes that can read as phone numbers.
    Address,
    Phone,
    Custom(usize),
    Name,
}

impl Kind {
    /// The built-in types, in the order the config names them.
    pub const BUILT_IN: [(Kind, &'static str); 10] = [
        (Kind::Email, "email"),
        (Kind::Phone, "phone"),
        (Kind::Card, "card"),
        (Kind::Iban, "iban"),
        (Kind::Ssn, "ssn"),
        (Kind::Ip, "ip"),
        (Kind::Secret, "secret"),
        (Kind::Name, "name"),
        (Kind::Address, "address"),
        (Kind::Dob, "dob"),
    ];

    /// The type's lower-case label (tags, counters, config): `email`, ..., or a custom name.
    pub fn label<'a>(&self, custom_labels: &'a [String]) -> &'a str {
        match self {
            Kind::Custom(i) => custom_labels.get(*i).map_or("custom", String::as_str),
            k => Kind::BUILT_IN.iter().find(|(b, _)| b == k).map_or("custom", |(_, l)| l),
        }
    }
}

/// One hit: the bytes `start..end` of a text (on char boundaries) hold an entity of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// Every detector of one configured plugin instance. Cheap to build: the built-in scanners need
/// no setup; only custom patterns compile (and only when there are some).
#[derive(Debug, Default)]
pub struct Detectors {
    /// Built-in kinds that are on (`Kind::Name` and `Kind::Custom(_)` are governed by their lists).
    pub enabled: Vec<Kind>,
    /// Person names to find (case-insensitive whole words).
    pub names: WordList,
    /// Also find names without a list, by census statistics and context (`Kind::Name` on).
    pub auto_names: bool,
    /// Deny-words (type `custom`, case-insensitive whole words).
    pub deny: WordList,
    /// Custom patterns, `Kind::Custom(i + 1)`.
    pub custom: Vec<Custom>,
    /// Labels of `Kind::Custom(i)`: `custom` first, then each pattern's name.
    pub custom_labels: Vec<String>,
}

impl Detectors {
    /// All hits in `text`, sorted by start, without overlaps: where two hits overlap, the kind
    /// listed first in [`Kind`] wins (then the longer one).
    pub fn scan(&self, text: &str) -> Vec<Span> {
        // Room for a dense text's hits without regrowing from empty (about one per 30 bytes).
        let mut hits = Vec::with_capacity(text.len() / 32 + 8);
        scan::all(self, text.as_bytes(), &mut hits);
        for (i, c) in self.custom.iter().enumerate() {
            c.find(text, Kind::Custom(i + 1), &mut hits);
        }
        resolve(hits)
    }
}

/// Keep the highest-priority hits that do not overlap, sorted by start: in priority order (then
/// by start, the longer first), a hit is kept when it overlaps no hit kept before it. The bytes
/// the kept hits cover are bits of one mask, so a hit is checked against all of them in a few
/// word operations, and no list is merged or rebuilt per kind.
fn resolve(mut hits: Vec<Span>) -> Vec<Span> {
    // Equal keys are equal spans, so an unstable sort gives the same result.
    hits.sort_unstable_by_key(|s| (s.kind, s.start, std::cmp::Reverse(s.end)));
    let len = hits.iter().map(|h| h.end).max().unwrap_or(0);
    let mut taken = vec![0u64; len.div_ceil(64)];
    hits.retain(|h| {
        if h.start >= h.end || covers_any(&taken, h.start, h.end) {
            return false;
        }
        cover(&mut taken, h.start, h.end);
        true
    });
    // Kept hits do not overlap and are not empty: their starts differ.
    hits.sort_unstable_by_key(|s| s.start);
    hits
}

/// The bits `start..end` of a word mask, word by word: (word index, bits).
fn words_of(start: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
    let (first, last) = (start / 64, (end - 1) / 64);
    (first..=last).map(move |w| {
        let lo = if w == first { start % 64 } else { 0 };
        let hi = if w == last { (end - 1) % 64 } else { 63 };
        // Bits lo..=hi.
        (w, (u64::MAX >> (63 - hi)) & (u64::MAX << lo))
    })
}

/// Whether any byte of `start..end` (not empty) is marked in `taken`.
fn covers_any(taken: &[u64], start: usize, end: usize) -> bool {
    words_of(start, end).any(|(w, m)| taken.get(w).is_some_and(|t| t & m != 0))
}

/// Mark the bytes `start..end` (not empty) in `taken`.
fn cover(taken: &mut [u64], start: usize, end: usize) {
    for (w, m) in words_of(start, end) {
        if let Some(t) = taken.get_mut(w) {
            *t |= m;
        }
    }
}

/// A byte that continues a word: ASCII letters, digits, `_`, and any non-ASCII byte (so a match
/// never ends inside a multi-byte letter).
pub(crate) fn is_word(c: u8) -> bool {
    WORD[usize::from(c)]
}

/// [`is_word`] as a table: scanners call it for most bytes.
const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
        i += 1;
    }
    t
};

/// The byte before `i`, if any.
pub(crate) fn before(b: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| b.get(j).copied())
}

/// Whether position `i` starts a token: the byte before it is not a word byte.
pub(crate) fn left_ok(b: &[u8], i: usize) -> bool {
    !before(b, i).is_some_and(is_word)
}

/// Whether position `end` ends a token: the byte there is not a word byte.
pub(crate) fn right_ok(b: &[u8], end: usize) -> bool {
    !b.get(end).copied().is_some_and(is_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Detectors {
        Detectors {
            enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            names: WordList::new(&["Jane Doe".to_string()]),
            custom_labels: vec!["custom".into()],
            ..Detectors::default()
        }
    }

    #[test]
    fn overlaps_go_to_the_stronger_kind() {
        let hits = vec![
            Span { start: 0, end: 10, kind: Kind::Phone },
            Span { start: 2, end: 12, kind: Kind::Card },
            Span { start: 12, end: 14, kind: Kind::Phone },
        ];
        let kept = resolve(hits);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].kind, Kind::Card);
        assert_eq!(kept[1].start, 12);
    }

    #[test]
    fn one_text_with_everything() {
        let text = "Jane Doe <jane.doe@example.com>, +44 20 7946 0958, card 4111 1111 1111 1111, \
                    IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, host 192.168.1.20, \
                    key sk-proj-abcDEF1234567890ghijKLMN";
        let kinds: Vec<Kind> = all().scan(text).iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Name,
                Kind::Email,
                Kind::Phone,
                Kind::Card,
                Kind::Iban,
                Kind::Ssn,
                Kind::Ip,
                Kind::Secret
            ]
        );
    }

    #[test]
    fn disabled_kinds_are_not_scanned() {
        let mut d = all();
        d.enabled.retain(|k| *k != Kind::Email);
        assert!(d.scan("mail a@example.com").is_empty());
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release -p pii-redact --target x86_64-unknown-linux-gnu -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn time_each_detector() {
        let para = "Hello, please call (555) 123-4567 or mail jane@example.com about order 12345, \
                    version 1.2.3 on 2024-01-15; the key sk-abcdefghij0123456789XYZ is old. ";
        let text = match std::env::var("PII_TEXT") {
            Ok(path) => std::fs::read_to_string(path).unwrap(),
            Err(_) => para.repeat(64 * 1024 / para.len()),
        };
        let names: Vec<String> =
            ["Jane Doe", "John Smith", "Maria Garcia", "Wei Zhang"].map(String::from).into();
        let mut d = Detectors {
            enabled: vec![],
            auto_names: std::env::var("PII_AUTO_NAMES").is_ok(),
            names: WordList::new(&names),
            custom_labels: vec!["custom".into()],
            ..Detectors::default()
        };
        for (k, label) in Kind::BUILT_IN {
            d.enabled = vec![k];
            let t = std::time::Instant::now();
            let n = d.scan(&text).len();
            println!("{label}: {:?} ({n} hits)", t.elapsed());
        }
        d.enabled = Kind::BUILT_IN.iter().map(|(k, _)| *k).collect();
        let rounds = std::env::var("PII_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            let n = d.scan(&text).len();
            println!("all built-in: {:?} ({n} hits)", t.elapsed());
        }
        let s = "{\"mode\": \"pseudonymize\"}";
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(crate::config::Settings::from_json(std::hint::black_box(s)).ok());
        }
        println!("config parse: {:?}", t.elapsed() / 1000);
        d.enabled = vec![];
        d.names = WordList::default();
        d.custom = vec![Custom::new("e", r"\bEMP-\d{6}\b").unwrap()];
        let t = std::time::Instant::now();
        let n = d.scan(&text).len();
        println!("custom regex: {:?} ({n} hits)", t.elapsed());
    }
}

/// The scan's median time over many rounds on one text, natively (a profiling loop):
/// `PII_TEXT=file PII_ROUNDS=n cargo test --release -p pii-redact --lib -- --ignored --nocapture
/// scan_median`.
#[cfg(test)]
mod bench {
    use super::*;

    /// Every span of every record of a corpus split, one line each, for comparing two builds:
    /// `PII_CORPUS=.cache/pii-corpus/dev.jsonl PII_OUT=file ... -- --ignored dump_spans`.
    #[test]
    #[ignore]
    fn dump_spans() {
        use std::fmt::Write;
        let (Ok(path), Ok(out)) = (std::env::var("PII_CORPUS"), std::env::var("PII_OUT")) else {
            return;
        };
        let d = Detectors {
            enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            custom_labels: vec!["custom".into()],
            auto_names: true,
            ..Detectors::default()
        };
        let mut dump = String::new();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let m: serde_json::Value = serde_json::from_str(line).unwrap();
            for s in d.scan(m["text"].as_str().unwrap()) {
                writeln!(dump, "{} {} {} {:?}", m["id"], s.start, s.end, s.kind).unwrap();
            }
        }
        std::fs::write(out, dump).unwrap();
    }

    #[test]
    #[ignore]
    fn scan_median() {
        let Ok(path) = std::env::var("PII_TEXT") else { return };
        let text = std::fs::read_to_string(path).unwrap();
        let rounds = std::env::var("PII_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(2000);
        let d = Detectors {
            enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            custom_labels: vec!["custom".into()],
            auto_names: true,
            ..Detectors::default()
        };
        let mut times = Vec::with_capacity(rounds);
        let mut n = 0;
        for _ in 0..rounds {
            let t = std::time::Instant::now();
            n = std::hint::black_box(d.scan(std::hint::black_box(&text))).len();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let med = times[rounds / 2];
        println!(
            "{} bytes, {n} hits: median {med:?}, {:.1} MB/s, p10 {:?}",
            text.len(),
            text.len() as f64 / med.as_secs_f64() / 1e6,
            times[rounds / 10]
        );
    }
}

/// `count` texts of `per_text` pieces of `parts` each, drawn by an xorshift from `seed`: the same
/// texts on every run. Shared by the tests that hold a fast path to its byte-by-byte reference.
#[cfg(test)]
pub(crate) fn joined(parts: &[&[u8]], per_text: usize, count: usize, seed: u32) -> Vec<Vec<u8>> {
    let mut seed = seed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize % parts.len()
    };
    (0..count)
        .map(|_| (0..per_text).flat_map(|_| parts[next()].iter().copied()).collect())
        .collect()
}

/// The texts a detector reports in `text`; shared by the detector modules' tests.
#[cfg(test)]
pub(crate) fn found(find: fn(&[u8], &mut Vec<Span>), text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    find(text.as_bytes(), &mut spans);
    spans.iter().map(|s| text[s.start..s.end].to_string()).collect()
}

#[cfg(test)]
mod report {
    use super::*;

    /// Hits per type on a text without PII, per 10,000 words, with examples:
    /// `PII_TEXT=file cargo test -p pii-redact -- --ignored --nocapture hits_per_type`.
    #[test]
    #[ignore]
    fn hits_per_type() {
        let Ok(path) = std::env::var("PII_TEXT") else { return };
        let text = std::fs::read_to_string(path).unwrap();
        let words = text.split_whitespace().count();
        let d = Detectors {
            enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            custom_labels: vec!["custom".into()],
            auto_names: true,
            ..Detectors::default()
        };
        let mut by: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for s in d.scan(&text) {
            let from = text.floor_char_boundary(s.start.saturating_sub(25));
            let to = text.ceil_char_boundary((s.end + 10).min(text.len()));
            let ctx =
                format!("{}[{}]{}", &text[from..s.start], &text[s.start..s.end], &text[s.end..to]);
            by.entry(s.kind.label(&d.custom_labels)).or_default().push(ctx.replace('\n', "⏎"));
        }
        println!("{words} words");
        for (k, v) in by {
            println!("{k}: {} ({:.2} per 10k words)", v.len(), v.len() as f64 * 1e4 / words as f64);
            for e in v.iter().take(40) {
                println!("    {e}");
            }
        }
    }
}

#[cfg(test)]
mod corpus {
    use super::*;
    use std::collections::BTreeMap;

    /// Recall and precision on a split of the PII evaluation corpus (scripts/pii-corpus.sh):
    /// `PII_CORPUS=.cache/pii-corpus/dev.jsonl cargo test -p pii-redact -- --ignored
    /// --nocapture corpus_scores`. An entity counts as found when hits cover it whole (any
    /// type: nothing of it leaks) and as typed when one hit of its own type covers it.
    #[test]
    #[ignore]
    fn corpus_scores() {
        let Ok(path) = std::env::var("PII_CORPUS") else { return };
        let show: usize = std::env::var("PII_SHOW").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        let d = Detectors {
            enabled: Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            custom_labels: vec!["custom".into()],
            auto_names: true,
            ..Detectors::default()
        };
        // type -> (entities, found, typed); type -> false hits; per phone region (n, found).
        let mut rec: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
        let mut fp: BTreeMap<String, u32> = BTreeMap::new();
        let mut fp_nat: BTreeMap<String, u32> = BTreeMap::new();
        let mut region: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        let mut fmt: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        let mut misses: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut fps: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (mut words_nat, mut bytes) = (0u64, 0usize);
        let mut el = std::time::Duration::ZERO;
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let m: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = m["text"].as_str().unwrap();
            let natural = m["kind"] == "natural";
            bytes += text.len();
            let t = std::time::Instant::now();
            let hits = d.scan(text);
            el += t.elapsed();
            let ents = m["entities"].as_array().unwrap();
            if natural {
                words_nat += m["words"].as_u64().unwrap();
            }
            for e in ents {
                let (s, x) =
                    (e["start"].as_u64().unwrap() as usize, e["end"].as_u64().unwrap() as usize);
                let ty = e["type"].as_str().unwrap().to_string();
                let covered = (s..x).all(|p| {
                    text.as_bytes()[p].is_ascii_whitespace()
                        || hits.iter().any(|h| h.start <= p && p < h.end)
                });
                let typed = hits
                    .iter()
                    .any(|h| h.start <= s && x <= h.end && h.kind.label(&d.custom_labels) == ty);
                if natural {
                    continue;
                }
                let r = rec.entry(ty.clone()).or_default();
                r.0 += 1;
                r.1 += u32::from(covered);
                r.2 += u32::from(typed);
                let f =
                    fmt.entry(format!("{ty}/{}", e["format"].as_str().unwrap_or("?"))).or_default();
                f.0 += 1;
                f.1 += u32::from(covered);
                if ty == "phone" {
                    let g =
                        region.entry(e["region"].as_str().unwrap_or("?").to_string()).or_default();
                    g.0 += 1;
                    g.1 += u32::from(covered);
                }
                if !covered {
                    let from = text.floor_char_boundary(s.saturating_sub(30));
                    misses
                        .entry(ty)
                        .or_default()
                        .push(format!("{}[{}]", &text[from..s], &text[s..x]).replace('\n', "⏎"));
                }
            }
            for h in &hits {
                let hit_any = ents.iter().any(|e| {
                    let (s, x) = (
                        e["start"].as_u64().unwrap() as usize,
                        e["end"].as_u64().unwrap() as usize,
                    );
                    h.start < x && s < h.end
                });
                if !hit_any {
                    let label = h.kind.label(&d.custom_labels).to_string();
                    *(if natural { &mut fp_nat } else { &mut fp })
                        .entry(label.clone())
                        .or_default() += 1;
                    let from = text.floor_char_boundary(h.start.saturating_sub(30));
                    let to = text.ceil_char_boundary((h.end + 15).min(text.len()));
                    fps.entry(label).or_default().push(
                        format!(
                            "{}[{}]{}",
                            &text[from..h.start],
                            &text[h.start..h.end],
                            &text[h.end..to]
                        )
                        .replace('\n', "⏎"),
                    );
                }
            }
        }
        println!(
            "| type | entities | recall (nothing leaks) | recall (own type) | false hits in labelled | false hits per 10k natural words |"
        );
        println!("|---|---|---|---|---|---|");
        for (ty, (n, f, t)) in &rec {
            let fpn = fp_nat.get(ty).copied().unwrap_or(0);
            println!(
                "| {ty} | {n} | {:.3} | {:.3} | {} | {:.2} |",
                f64::from(*f) / f64::from(*n),
                f64::from(*t) / f64::from(*n),
                fp.get(ty).copied().unwrap_or(0),
                f64::from(fpn) * 1e4 / words_nat as f64
            );
        }
        println!(
            "natural words: {words_nat}; scan alone {:.1} MB/s natively ({bytes} bytes in {el:?})",
            bytes as f64 / el.as_secs_f64() / 1e6
        );
        let mut worst: Vec<_> = region.iter().filter(|(_, (n, f))| f < n).collect();
        worst.sort_by_key(|(_, (n, f))| std::cmp::Reverse(n - f));
        println!(
            "phone regions with misses ({} regions in all): {:?}",
            region.len(),
            worst.iter().take(40).collect::<Vec<_>>()
        );
        let mut fm: Vec<_> = fmt.iter().filter(|(_, (n, f))| f < n).collect();
        fm.sort_by_key(|(_, (n, f))| std::cmp::Reverse(n - f));
        println!("formats with misses: {:?}", fm.iter().take(40).collect::<Vec<_>>());
        for (ty, v) in misses.iter() {
            println!("missed {ty}:");
            for m in v.iter().take(show) {
                println!("    {m}");
            }
        }
        for (ty, v) in fps.iter() {
            println!("false {ty}:");
            for m in v.iter().take(show) {
                println!("    {m}");
            }
        }
    }
}
