//! Configured lists: person names and deny-words (ASCII case-insensitive, whole words), and custom
//! patterns (regular expressions, compiled by `regex-lite` only when some are configured).

use super::{Kind, Span, is_word, left_ok, right_ok};

/// Words or phrases to find as whole words, ignoring ASCII case.
#[derive(Debug, Default)]
pub struct WordList {
    /// Each entry as bytes, with its first byte lower-cased for a quick first-byte filter.
    words: Vec<(u8, Vec<u8>)>,
}

impl WordList {
    /// A list of the non-blank entries of `words` (trimmed).
    pub fn new(words: &[String]) -> Self {
        let words = words
            .iter()
            .map(|w| w.trim().as_bytes().to_vec())
            .filter(|w| !w.is_empty())
            .map(|w| (w[0].to_ascii_lowercase(), w))
            .collect();
        Self { words }
    }

    /// Push a span of `kind` for every whole-word occurrence.
    pub fn find(&self, text: &str, kind: Kind, out: &mut Vec<Span>) {
        if self.words.is_empty() {
            return;
        }
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let first = b[i].to_ascii_lowercase();
            let hit = left_ok(b, i)
                .then(|| {
                    self.words
                        .iter()
                        .filter(|(f, w)| *f == first && b.len() - i >= w.len())
                        .filter(|(_, w)| b[i..i + w.len()].eq_ignore_ascii_case(w))
                        .map(|(_, w)| i + w.len())
                        .filter(|end| right_ok(b, *end))
                        .max()
                })
                .flatten();
            match hit {
                Some(end) => {
                    out.push(Span { start: i, end, kind });
                    i = end;
                }
                // No entry starts here: skip the rest of this word (entries start at word starts).
                None if is_word(b[i]) => {
                    while i < b.len() && is_word(b[i]) {
                        i += 1;
                    }
                }
                None => i += 1,
            }
        }
    }
}

/// One custom pattern.
#[derive(Debug)]
pub struct Custom {
    re: regex_lite::Regex,
}

impl Custom {
    /// Compile `pattern`; the error names the pattern.
    pub fn new(name: &str, pattern: &str) -> Result<Self, String> {
        regex_lite::Regex::new(pattern)
            .map(|re| Self { re })
            .map_err(|e| format!("custom_patterns.{name}: {e}"))
    }

    /// Push a span of `kind` for every non-empty match.
    pub fn find(&self, text: &str, kind: Kind, out: &mut Vec<Span>) {
        for m in self.re.find_iter(text).filter(|m| !m.is_empty()) {
            out.push(Span { start: m.start(), end: m.end(), kind });
        }
    }
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
    fn custom_patterns_match() {
        let c = Custom::new("employee", r"EMP-\d{6}").unwrap();
        let mut v = Vec::new();
        c.find("id EMP-123456 ok", Kind::Custom(1), &mut v);
        assert_eq!((v[0].start, v[0].end), (3, 13));
        assert!(Custom::new("bad", "(").is_err());
    }
}
