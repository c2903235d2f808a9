//! The placeholders of one request: `<EMAIL_1>`, `<PHONE_2>`, ... Each distinct (type, value)
//! gets one placeholder, numbered per type in order of first appearance; the vault maps them back
//! to the original values for the answer. It lives only as long as the request's instance.
//!
//! A value is restored as text (message content) or inside a JSON string (tool-call arguments,
//! which are a JSON document): there it is written escaped, so the arguments stay valid JSON and
//! carry the original value. A value found in a JSON text of the request (tool-call arguments of
//! the history, schemas) is kept decoded, and also as it was written there.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashTable;

/// The vault's tables hash with [`WordHasher`], not std's SipHash: a request issues one
/// placeholder per entity and looks each value up and inserts it in two tables, and SipHash
/// was most of that cost. SipHash's guard against crafted collisions buys nothing here: on
/// `wasm32-unknown-unknown` std has no randomness, so its keys are fixed anyway, and a table
/// lives for one request, bounded by its 4096 entities.
type Set<K> = HashSet<K, BuildHasherDefault<WordHasher>>;

/// [`WordHasher`]'s hash of `s`.
fn hash(s: &str) -> u64 {
    let mut h = WordHasher::default();
    h.write(s.as_bytes());
    h.finish()
}

/// A multiplicative hash of eight bytes at a time (the scheme of rustc's FxHasher), with a
/// final mix so the high bits (hashbrown's tags) depend on every byte.
#[derive(Default)]
pub struct WordHasher(u64);

/// An odd constant with well-spread bits (the golden ratio's).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        // The length too: `ab` and `ab\0` differ.
        self.add(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 59));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(SEED) ^ (h >> 32)
    }
}

/// What an issued placeholder stands for (borrowed from the vault).
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// The value as text.
    pub text: &'a str,
    /// How the value was written inside a JSON text of the request, where that is not simply
    /// `text` escaped (escapes written otherwise, or a span that covered JSON punctuation and so
    /// did not decode as one string): restored into JSON exactly as it was.
    json: Option<&'a str>,
}

impl<'a> Original<'a> {
    /// The value as it is written inside a JSON string.
    pub fn in_json(&self) -> Cow<'a, str> {
        match self.json {
            Some(j) => Cow::Borrowed(j),
            None => escape(self.text),
        }
    }
}

/// `s` as the content of a JSON string (without the quotes): `"`, `\` and control characters
/// escaped as serde_json writes them; borrowed when nothing needs escaping (the common case).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
        return Cow::Borrowed(s);
    }
    let quoted = serde_json::to_string(s).unwrap_or_default();
    let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
    Cow::Owned(inner.to_string())
}

/// Placeholders and their original values.
///
/// The tables hold indices into `entries` (hashbrown's `HashTable`, which std's maps are built
/// on), and every entry's placeholder and value sit back to back in one buffer, `text`: issuing
/// a placeholder allocates only the string it returns (the buffer grows by doubling), where a
/// string kept per placeholder and per value cost two more allocations per entity. A
/// placeholder is found by its type's name and its number (each type lists its entries by
/// number), not by a hash of the whole placeholder.
#[derive(Debug, Default)]
pub struct Vault {
    /// Every issued placeholder with its original value, in order of issue.
    entries: Vec<Entry>,
    /// The placeholders and values of `entries`, one after the other.
    text: String,
    /// The placeholders of each type, so the same value gets the same placeholder. A list: a
    /// request holds a handful of types, and a comparison of labels costs less than a hash.
    issued: Vec<Issued>,
    /// The longest placeholder, in bytes: bounds how much a stream holds back.
    longest: usize,
    /// Placeholder-shaped text the request already held (`<EMAIL_1>` typed by the user): never
    /// issued, so the answer cannot turn the user's own text into someone's value.
    taken: Set<String>,
}

/// One issued placeholder: `text[start..mid]` of its vault is the placeholder, `text[mid..end]`
/// the value.
#[derive(Debug)]
struct Entry {
    start: usize,
    mid: usize,
    end: usize,
    /// How the value was written in a JSON text, where that differs from its escaping
    /// ([`Original::json`]): rare, so a string of its own.
    json: Option<String>,
    /// The hash of the value, for its type's table to grow by.
    value_hash: u64,
}

impl Entry {
    fn placeholder<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.mid).unwrap_or_default()
    }

    fn original<'a>(&'a self, text: &'a str) -> Original<'a> {
        Original {
            text: text.get(self.mid..self.end).unwrap_or_default(),
            json: self.json.as_deref(),
        }
    }
}

/// A type of placeholder in one vault (its index in the vault's list of types): issuing by
/// type, not by label, spares a comparison of label strings per entity.
#[derive(Debug, Clone, Copy)]
pub struct Type(usize);

/// The placeholders of one type.
#[derive(Debug, Default)]
struct Issued {
    /// The placeholders' name: the type's label in upper case. Labels that differ only in case
    /// are one type (their placeholders would be the same text).
    upper: String,
    /// The last number used.
    number: usize,
    /// `entries` of this type by number (`n` at `n - 1`); [`SKIPPED`] for a number the request
    /// held itself.
    numbered: Vec<usize>,
    /// This type's `entries` by value, so the same value gets the same placeholder.
    by_value: HashTable<usize>,
}

/// In [`Issued::numbered`]: no entry has this number.
const SKIPPED: usize = usize::MAX;

/// The hash a table grows by, of the entry at index `e`.
fn rehash(entries: &[Entry], e: usize, of: fn(&Entry) -> u64) -> u64 {
    entries.get(e).map_or(0, of)
}

impl Vault {
    /// Room for `n` more placeholders and `bytes` more bytes of placeholders and values.
    pub fn reserve(&mut self, n: usize, bytes: usize) {
        self.entries.reserve(n);
        self.text.reserve(bytes);
    }

    /// The placeholder for `value` of type `label` (lower-case), issuing one when new.
    #[cfg(test)]
    pub fn placeholder(&mut self, label: &str, value: &str) -> String {
        let t = self.type_of(label);
        self.issue(t, value, None)
    }

    /// The placeholder for `value` of type `t`, issuing one when new.
    pub fn placeholder_of(&mut self, t: Type, value: &str) -> String {
        self.issue(t, value, None)
    }

    /// [`Self::placeholder_of`] for `raw`, found inside a JSON text: the value is the decoded
    /// string content where `raw` decodes as one, else `raw` itself; either way a restore into
    /// JSON writes `raw` back.
    pub fn placeholder_in_json(&mut self, t: Type, raw: &str) -> String {
        if !raw.bytes().any(|c| c == b'"' || c == b'\\') {
            return self.issue(t, raw, None);
        }
        match serde_json::from_str::<String>(&format!("\"{raw}\"")) {
            Ok(text) => self.issue(t, &text, Some(raw)),
            Err(_) => self.issue(t, raw, Some(raw)),
        }
    }

    /// Room for `n` placeholders of type `t`, so issuing them never rehashes its map.
    pub fn reserve_of(&mut self, t: Type, n: usize) {
        let Vault { entries, issued, .. } = self;
        if let Some(of_type) = issued.get_mut(t.0) {
            of_type.by_value.reserve(n, |e| rehash(entries, *e, |x| x.value_hash));
            of_type.numbered.reserve(n);
        }
    }

    /// The type labelled `label` (lower case), added when new.
    pub fn type_of(&mut self, label: &str) -> Type {
        let same = |t: &Issued| {
            t.upper.len() == label.len()
                && t.upper.bytes().zip(label.bytes()).all(|(u, l)| u == l.to_ascii_uppercase())
        };
        match self.issued.iter().position(same) {
            Some(k) => Type(k),
            None => {
                let upper = label.to_ascii_uppercase();
                self.issued.push(Issued { upper, ..Issued::default() });
                Type(self.issued.len() - 1)
            }
        }
    }

    fn issue(&mut self, t: Type, value: &str, json: Option<&str>) -> String {
        let Vault { entries, text, issued, taken, longest } = self;
        let Some(of_type) = issued.get_mut(t.0) else { return String::new() };
        let value_hash = hash(value);
        let same = |e: &usize| entries.get(*e).is_some_and(|x| x.original(text).text == value);
        if let Some(x) = of_type.by_value.find(value_hash, same).and_then(|e| entries.get(*e)) {
            return x.placeholder(text).to_string();
        }
        let p = loop {
            of_type.number += 1;
            let p = numbered(&of_type.upper, of_type.number);
            if taken.is_empty() || !taken.contains(&p) {
                break p;
            }
            of_type.numbered.push(SKIPPED);
        };
        *longest = (*longest).max(p.len());
        // Kept only where it differs from what escaping would write anyway.
        let json = json.filter(|j| *j != escape(value)).map(str::to_string);
        let e = entries.len();
        let start = text.len();
        text.push_str(&p);
        let mid = text.len();
        text.push_str(value);
        entries.push(Entry { start, mid, end: text.len(), json, value_hash });
        of_type.by_value.insert_unique(value_hash, e, |e| rehash(entries, *e, |x| x.value_hash));
        of_type.numbered.push(e);
        p
    }

    /// Note every placeholder-shaped token (`<NAME_123>`) in `text` as taken.
    pub fn reserve_existing(&mut self, text: &str) {
        let b = text.as_bytes();
        let mut from = 0;
        // `str::find` of an ASCII char is core's word-at-a-time memchr, not a byte loop.
        while let Some(off) = text.get(from..).and_then(|r| r.find('<')) {
            let at = from + off;
            from = at + 1;
            let name = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            let end = at + 1 + name;
            let shaped = b.get(end) == Some(&b'>')
                && name >= 3
                && b[at + 1..end].iter().rposition(|c| *c == b'_').is_some_and(|u| {
                    u + 1 < name && b[at + 2 + u..end].iter().all(u8::is_ascii_digit)
                });
            if shaped {
                self.taken.insert(text[at..=end].to_string());
            }
        }
    }

    /// No placeholder was issued: nothing to restore.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The longest placeholder issued, in bytes.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// If a whole placeholder starts at `at` (a `<`), its length and original value.
    pub fn at<'a>(&'a self, text: &str, at: usize) -> Option<(usize, Original<'a>)> {
        let rest = text.get(at..)?;
        if !rest.starts_with('<') {
            return None;
        }
        let window = &rest.as_bytes()[..rest.len().min(self.longest)];
        let close = window.iter().position(|c| *c == b'>')?;
        // `<NAME_n>`: the name ends at the last `_` (a number holds none), and the number is
        // written as issued (decimal, from 1, no leading zero), so the candidate is exactly the
        // placeholder `n` of the type `NAME` when that one was issued.
        let inner = rest.as_bytes().get(1..close)?;
        let u = inner.iter().rposition(|c| *c == b'_')?;
        let (name, digits) = (&inner[..u], &inner[u + 1..]);
        if digits.first().is_none_or(|d| *d == b'0') {
            return None;
        }
        let mut n: usize = 0;
        for d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
        }
        let of_type = self.issued.iter().find(|t| t.upper.as_bytes() == name)?;
        let e = *of_type.numbered.get(n - 1)?;
        self.entries.get(e).map(|x| (close + 1, x.original(&self.text)))
    }

    /// Whether `tail` (starting with `<`) is a proper prefix of some placeholder: it may become
    /// one when more text arrives.
    pub fn could_start(&self, tail: &str) -> bool {
        tail.len() < self.longest
            && tail.starts_with('<')
            && self
                .entries
                .iter()
                .map(|x| x.placeholder(&self.text))
                .any(|p| p.len() > tail.len() && p.starts_with(tail))
    }

    /// Every placeholder in `text` replaced by its original value.
    #[cfg(test)]
    pub fn restore(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (range, original) in self.occurrences(text) {
            out.push_str(&text[last..range.start]);
            out.push_str(original.text);
            last = range.end;
        }
        out.push_str(&text[last..]);
        out
    }

    /// The byte ranges of the placeholders in `text`, with their original values.
    pub fn occurrences<'a>(&'a self, text: &str) -> Vec<(std::ops::Range<usize>, Original<'a>)> {
        let mut found = Vec::new();
        if self.is_empty() {
            return found;
        }
        let mut i = 0;
        while let Some(off) = text.get(i..).and_then(|r| r.find('<')) {
            let at = i + off;
            match self.at(text, at) {
                Some((len, original)) => {
                    found.push((at..at + len, original));
                    i = at + len;
                }
                None => i = at + 1,
            }
        }
        found
    }
}

/// `<UPPER_n>`, written without the formatting machinery (one of these per entity).
fn numbered(upper: &str, n: usize) -> String {
    let mut digits = [0u8; 20];
    let (mut k, mut x) = (digits.len(), n);
    loop {
        k -= 1;
        digits[k] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    let mut p = String::with_capacity(upper.len() + 3 + digits.len() - k);
    p.push('<');
    p.push_str(upper);
    p.push('_');
    p.extend(digits[k..].iter().map(|d| char::from(*d)));
    p.push('>');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that differ only in length hash apart, and placeholders of one type spread over
    /// every tag hashbrown reads from the top seven bits (else lookups compare long chains).
    #[test]
    fn word_hasher_spreads() {
        let h = |s: &str| {
            let mut x = WordHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_ne!(h("ab"), h("ab\0"));
        assert_ne!(h("12345678"), h("12345678\0"));
        let tags: HashSet<u64> = (0..1000).map(|n| h(&format!("<EMAIL_{n}>")) >> 57).collect();
        assert_eq!(tags.len(), 128);
        let low: HashSet<u64> = (0..1000).map(|n| h(&format!("{n}")) & 1023).collect();
        assert!(low.len() > 550, "{}", low.len());
    }

    #[test]
    fn same_value_same_placeholder() {
        let mut v = Vault::default();
        assert_eq!(v.placeholder("email", "a@b.io"), "<EMAIL_1>");
        assert_eq!(v.placeholder("email", "c@d.io"), "<EMAIL_2>");
        assert_eq!(v.placeholder("email", "a@b.io"), "<EMAIL_1>");
        assert_eq!(v.placeholder("phone", "555-123-4567"), "<PHONE_1>");
        for n in 2..=120 {
            assert_eq!(v.placeholder("phone", &n.to_string()), format!("<PHONE_{n}>"));
        }
        assert_eq!(
            v.restore("x <EMAIL_2> <EMAIL_1><PHONE_1> <EMAIL_3> <<EMAIL_1>"),
            "x c@d.io a@b.io555-123-4567 <EMAIL_3> <a@b.io"
        );
    }

    /// A placeholder is found by its type's name and number: only the exact text issued.
    #[test]
    fn only_the_exact_placeholder_is_restored() {
        let mut v = Vault::default();
        v.placeholder("email", "a@b.io");
        v.placeholder("my_type", "x");
        let text = "<EMAIL_01> <EMAIL_1x> <EMAIL_> <email_1> <EMAIL_2> <MY_TYPE_1> <TYPE_1> \
                    <EMAIL_99999999999999999999999> <EMAIL_1>";
        assert_eq!(
            v.restore(text),
            "<EMAIL_01> <EMAIL_1x> <EMAIL_> <email_1> <EMAIL_2> x <TYPE_1> \
                    <EMAIL_99999999999999999999999> a@b.io"
        );
    }

    #[test]
    fn placeholders_the_user_typed_are_never_issued() {
        let mut v = Vault::default();
        v.reserve_existing("I wrote <EMAIL_1> and <EMAIL_3>, <x_1>, <EMAIL_>");
        assert_eq!(v.placeholder("email", "a@b.io"), "<EMAIL_2>");
        assert_eq!(v.placeholder("email", "c@d.io"), "<EMAIL_4>");
        assert_eq!(v.restore("<EMAIL_1> <EMAIL_2>"), "<EMAIL_1> a@b.io");
    }

    #[test]
    fn values_are_written_escaped_inside_json() {
        let mut v = Vault::default();
        let value = "PW-a\"b\\c\nd\u{1}é";
        let p = v.placeholder("pw", value);
        let (_, o) = v.at(&p, 0).unwrap();
        assert_eq!(o.text, value);
        let json = format!("\"{}\"", o.in_json());
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), value, "{json}");
        assert_eq!(escape("plain é"), "plain é");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn values_found_in_json_are_kept_decoded_and_as_written() {
        let mut v = Vault::default();
        // An escaped newline inside a JSON string: the value holds the newline.
        let t = v.type_of("address");
        let p = v.placeholder_in_json(t, "1 Main St\\nSpringfield");
        let (_, o) = v.at(&p, 0).unwrap();
        assert_eq!(
            (o.text, o.in_json()),
            ("1 Main St\nSpringfield", "1 Main St\\nSpringfield".into())
        );
        // The same value in plain text gets the same placeholder.
        assert_eq!(v.placeholder("address", "1 Main St\nSpringfield"), p);
        // `\u0040` decodes to `@`, and is written back as the request wrote it.
        let t = v.type_of("email");
        let p = v.placeholder_in_json(t, "ann\\u0040x.io");
        let (_, o) = v.at(&p, 0).unwrap();
        assert_eq!((o.text, o.in_json()), ("ann@x.io", "ann\\u0040x.io".into()));
        // A span over JSON punctuation is no string: kept and restored as it was.
        let raw = "a\", \"b";
        let t = v.type_of("custom");
        let p = v.placeholder_in_json(t, raw);
        let (_, o) = v.at(&p, 0).unwrap();
        assert_eq!((o.text, o.in_json()), (raw, raw.into()));
    }

    #[test]
    fn prefixes() {
        let mut v = Vault::default();
        v.placeholder("email", "a@b.io");
        assert!(v.could_start("<"));
        assert!(v.could_start("<EMA"));
        assert!(v.could_start("<EMAIL_1"));
        assert!(!v.could_start("<EMAIL_1>"));
        assert!(!v.could_start("<EMAIL_2"));
        assert!(!v.could_start("<b"));
    }
}
