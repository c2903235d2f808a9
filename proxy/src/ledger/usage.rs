//! Token usage of one request (read from an upstream's answer by [`crate::trail`]), and its
//! estimate from text without a tokenizer: a prompt's at admission, an answer's when no usage
//! came.
//!
//! The estimate (documented in docs/limits.md): every run of letters and digits costs one token
//! per four characters started (`hello` 2, `a` 1), every other visible character (punctuation,
//! symbols, and each CJK, kana or Hangul character) one token, white space nothing; each chat
//! message adds 4 tokens of framing and a chat prompt 3 for the reply's priming, as OpenAI's
//! counting guide does. It errs high rather than low, since it reserves at admission: a word of
//! five to eight letters costs 2 where a BPE tokenizer usually spends 1; settlement replaces it
//! with the upstream's count whenever one comes.

use serde::Serialize;

/// Tokens of one request, as upstreams report them. `prompt_tokens` includes the cached ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens the upstream served from its prompt cache (billed at the cached price).
    pub cached_prompt_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens together: what counts against tokens per minute.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Tokens of a text, estimated without a tokenizer (see the module documentation). Every request
/// of a tenant runs this over its whole prompt, so ASCII (most prompts) is classified byte by
/// byte; only other characters are decoded.
pub fn estimate_tokens(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let (mut tokens, mut run, mut at) = (0u64, 0u64, 0usize);
    while let Some(&b) = bytes.get(at) {
        let (word, space, len) = if b.is_ascii() {
            (b.is_ascii_alphanumeric(), matches!(b, b' ' | b'\t'..=b'\r'), 1)
        } else {
            // `at` is always at a character boundary: it only moves by whole characters.
            let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else { break };
            (c.is_alphanumeric() && !is_cjk(c), c.is_whitespace(), c.len_utf8())
        };
        at += len;
        if word {
            run += 1;
            continue;
        }
        tokens += run.div_ceil(4);
        run = 0;
        if !space {
            tokens += 1;
        }
    }
    tokens + run.div_ceil(4)
}

/// Prompt tokens of a chat request estimated from its message texts (content, names, tool-call
/// arguments: whatever the caller passes, one item per message).
pub fn estimate_chat_tokens<'a>(messages: impl IntoIterator<Item = &'a str>) -> u64 {
    let framed: u64 = messages.into_iter().map(|text| 4 + estimate_tokens(text)).sum();
    framed + 3
}

/// CJK ideographs, kana and Hangul: BPE tokenizers spend about a token on each.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
        | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_word_pieces_and_symbols() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("   \n"), 0);
        assert_eq!(estimate_tokens("Hello, world!"), 6);
        assert_eq!(estimate_tokens("internationalization"), 5);
        assert_eq!(estimate_tokens("東京タワー"), 5);
        assert_eq!(estimate_tokens("café au lait"), 3);
        // Framing: 4 a message and 3 for the reply.
        assert_eq!(estimate_chat_tokens(["Hello, world!", "ok"]), 4 + 6 + 4 + 1 + 3);
    }

    /// The estimate as first written, one decoded character at a time.
    fn by_chars(text: &str) -> u64 {
        let (mut tokens, mut run) = (0u64, 0u64);
        for c in text.chars() {
            if c.is_alphanumeric() && !is_cjk(c) {
                run += 1;
                continue;
            }
            tokens += run.div_ceil(4);
            run = 0;
            if !c.is_whitespace() {
                tokens += 1;
            }
        }
        tokens + run.div_ceil(4)
    }

    #[test]
    fn the_byte_reading_counts_as_the_character_reading() {
        let pieces = [
            "word",
            " ",
            "\t",
            "\u{b}",
            "\u{c}",
            "\r\n",
            "\u{a0}",
            "\u{2003}",
            "42",
            ",",
            "é",
            "ß",
            "東京",
            "タワー",
            "한국어",
            "😀",
            "\u{1}",
            "\u{7f}",
            "Ωmega",
            "٣",
            "x_y",
            "internationalization",
        ];
        // Every ordered pair and triple of pieces, so each kind of character meets every other.
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    assert_eq!(estimate_tokens(&text), by_chars(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn the_estimate_grows_with_the_text() {
        let mut text = String::new();
        let mut last = 0;
        for piece in ["The quick brown fox ", "jumps over ", "13 lazy dogs; ", "ünïcödé ", "改行"]
        {
            text.push_str(piece);
            let now = estimate_tokens(&text);
            assert!(now > last, "{text:?}: {now} after {last}");
            last = now;
        }
    }
}
