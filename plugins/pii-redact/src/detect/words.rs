//! Configured lists: person names and deny-words (ASCII case-insensitive, whole words), and custom
//! patterns (regular expressions, compiled by `regex-lite` only when some are configured).

use super::{Kind, Span, left_ok, right_ok};

/// Words or phrases to find as whole words, ignoring ASCII case.
#[derive(Debug)]
pub struct WordList {
    /// Each entry as bytes, with its first byte lower-cased for a quick first-byte filter.
    words: Vec<(u8, Vec<u8>)>,
    /// `first[c]`: some entry starts with byte `c` (either case), so most words are skipped
    /// after one lookup.
    first: [bool; 256],
}

impl Default for WordList {
    fn default() -> Self {
        Self { words: Vec::new(), first: [false; 256] }
    }
}

impl WordList {
    /// A list of the non-blank entries of `words` (trimmed).
    pub fn new(words: &[String]) -> Self {
        let words = words
            .iter()
            .map(|w| w.trim().as_bytes().to_vec())
            .filter(|w| !w.is_empty())
            .map(|w| (w[0].to_ascii_lowercase(), w))
            .collect::<Vec<_>>();
        let mut first = [false; 256];
        for (f, _) in &words {
            first[usize::from(*f)] = true;
            first[usize::from(f.to_ascii_uppercase())] = true;
        }
        Self { words, first }
    }

    /// Push a span of `kind` for every whole-word occurrence (the standalone form of [`at`],
    /// for tests).
    ///
    /// [`at`]: Self::at
    #[cfg(test)]
    pub fn find(&self, text: &str, kind: Kind, out: &mut Vec<Span>) {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match self.at(b, i) {
                Some(end) => {
                    out.push(Span { start: i, end, kind });
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether some entry starts with byte `c` (either case): the scanner's first-byte filter.
    pub fn starts_with(&self, c: u8) -> bool {
        self.first[usize::from(c)]
    }

    /// The end of the longest entry at `i`, as a whole word (not after a word byte).
    pub fn at(&self, b: &[u8], i: usize) -> Option<usize> {
        if !self.starts_with(*b.get(i)?) || !left_ok(b, i) {
            return None;
        }
        self.longest_at(b, i)
    }

    /// The end of the longest entry that matches at `i` as a whole word.
    fn longest_at(&self, b: &[u8], i: usize) -> Option<usize> {
        let first = b[i].to_ascii_lowercase();
        self.words
            .iter()
            .filter(|(f, w)| *f == first && b.len() - i >= w.len())
            .filter(|(_, w)| b[i..i + w.len()].eq_ignore_ascii_case(w))
            .map(|(_, w)| i + w.len())
            .filter(|end| right_ok(b, *end))
            .max()
    }
}

/// One custom pattern.
#[derive(Debug)]
pub struct Custom {
    re: regex_lite::Regex,
    /// A literal every match starts with, when the pattern has one: the text is searched for
    /// it first and the regex runs only there (regex-lite has no literal optimisations of its own).
    prefix: Option<String>,
}

/// How far past a candidate start the regex looks: to the first whitespace at least this far.
const WINDOW: usize = 256;
/// ... but never further than this.
const MAX_WINDOW: usize = 4096;

impl Custom {
    /// Compile `pattern`; the error names the pattern.
    pub fn new(name: &str, pattern: &str) -> Result<Self, String> {
        regex_lite::Regex::new(pattern)
            .map(|re| Self { re, prefix: literal_prefix(pattern) })
            .map_err(|e| format!("custom_patterns.{name}: {e}"))
    }

    /// Push a span of `kind` for every non-empty match.
    pub fn find(&self, text: &str, kind: Kind, out: &mut Vec<Span>) {
        let Some(lit) = &self.prefix else {
            for m in self.re.find_iter(text).filter(|m| !m.is_empty()) {
                out.push(Span { start: m.start(), end: m.end(), kind });
            }
            return;
        };
        let b = text.as_bytes();
        let mut from = 0;
        while let Some(off) = text.get(from..).and_then(|r| r.find(lit.as_str())) {
            let at = from + off;
            let mut end = (at + WINDOW).min(b.len());
            while end < b.len() && end < at + MAX_WINDOW && !b[end].is_ascii_whitespace() {
                end += 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match self.re.find_at(&text[..end], at) {
                Some(m) if m.start() == at && !m.is_empty() => {
                    out.push(Span { start: m.start(), end: m.end(), kind });
                    from = m.end();
                }
                // A later match in the window starts with the literal too: the search finds it.
                _ => from = at + lit.chars().next().map_or(1, char::len_utf8),
            }
        }
    }
}

/// The literal that starts every match of `pattern`, if it has one of 2+ bytes: leading `^` and
/// `\b` are skipped, escaped punctuation is literal, and the literal stops before anything
/// special (a class, group, repetition). Patterns with `|` anywhere get none.
fn literal_prefix(pattern: &str) -> Option<String> {
    if pattern.contains('|') {
        return None;
    }
    let mut rest = pattern;
    while let Some(r) = rest.strip_prefix("\\b").or_else(|| rest.strip_prefix('^')) {
        rest = r;
    }
    let mut lit = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let ch = match c {
            '\\' => match chars.peek() {
                Some(&n) if n.is_ascii_punctuation() => {
                    chars.next();
                    n
                }
                _ => break,
            },
            '.' | '^' | '$' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}' => break,
            c => c,
        };
        // A repetition after it makes this char optional or repeated: the literal ends before
        // (`?`, `*`, `{`) or with it (`+`).
        match chars.peek() {
            Some('?' | '*' | '{') => break,
            Some('+') => {
                lit.push(ch);
                break;
            }
            _ => lit.push(ch),
        }
    }
    (lit.len() >= 2).then_some(lit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(list: &WordList, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        list.find(text, Kind::Name, &mut v);
        v.iter().map(|s| text[s.start..s.end].to_string()).collect()
    }

    #[test]
    fn whole_words_ignoring_case() {
        let l = WordList::new(&["Jane".into(), "jane doe".into(), " ".into(), "Zoë".into()]);
        assert_eq!(
            found(&l, "JANE DOE met jane, not Janet; Zoë came"),
            ["JANE DOE", "jane", "Zoë"]
        );
        assert!(found(&l, "Mary-Janet, janes").is_empty());
    }

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix(r"\bEMP-\d{6}\b").as_deref(), Some("EMP-"));
        assert_eq!(literal_prefix(r"^ACME\.ID_x?").as_deref(), Some("ACME.ID_"));
        assert_eq!(literal_prefix(r"ab+c").as_deref(), Some("ab"));
        assert_eq!(literal_prefix(r"(?i)emp-\d+"), None);
        assert_eq!(literal_prefix(r"EMP|EMX"), None);
        assert_eq!(literal_prefix(r"x\d+"), None, "too short");
    }

    #[test]
    fn prefiltered_matches_equal_plain_regex() {
        let text =
            "EMP-123456, xEMP-123456 EMP-12345 EMP-1234567 (EMP-654321) EMPEMP-111111 é EMP-000001";
        for pattern in [r"\bEMP-\d{6}\b", r"EMP-\d{6}", r"EMP-\d+", r"EMP"] {
            let c = Custom::new("p", pattern).unwrap();
            assert!(c.prefix.is_some(), "{pattern}");
            let mut fast = Vec::new();
            c.find(text, Kind::Custom(1), &mut fast);
            let plain: Vec<(usize, usize)> =
                c.re.find_iter(text).map(|m| (m.start(), m.end())).collect();
            let fast: Vec<(usize, usize)> = fast.iter().map(|s| (s.start, s.end)).collect();
            assert_eq!(fast, plain, "{pattern}");
        }
    }

    #[test]
    fn custom_patterns_match() {
        let c = Custom::new("employee", r"EMP-\d{6}").unwrap();
        let mut v = Vec::new();
        c.find("id EMP-123456 ok", Kind::Custom(1), &mut v);
        assert_eq!((v[0].start, v[0].end), (3, 13));
        assert!(Custom::new("bad", "(").is_err());
    }
}
