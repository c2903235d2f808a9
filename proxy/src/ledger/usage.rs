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
/// of a tenant runs this over its whole prompt, so ASCII (most prompts) is read eight bytes at a
/// time where they are all ASCII; only other characters are decoded. A run of `n` letters and
/// digits costs `ceil(n / 4)`: here, one token at each of its characters whose place in the run
/// is a multiple of four.
pub fn estimate_tokens(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut count = Count::default();
    let mut at = 0;
    while at < bytes.len() {
        if let Some(chunk) = bytes.get(at..at + 8) {
            let eight = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            if eight & HIGH == 0 {
                count.eight_ascii(eight);
                at += 8;
                continue;
            }
        }
        let b = bytes[at];
        if b.is_ascii() {
            let (word, space) = (b.is_ascii_alphanumeric(), matches!(b, b' ' | b'\t'..=b'\r'));
            count.char(word, !word && !space);
            at += 1;
            continue;
        }
        // `at` is always at a character boundary: it only moves by whole characters.
        let Some(c) = text.get(at..).and_then(|rest| rest.chars().next()) else { break };
        let (word, space) = (c.is_alphanumeric() && !is_cjk(c), c.is_whitespace());
        count.char(word, !word && !space);
        at += c.len_utf8();
    }
    count.tokens
}

/// The estimate so far: its tokens, and where the run of letters and digits it is in stands
/// (its length so far, modulo 4; 0 outside a run).
#[derive(Default)]
struct Count {
    tokens: u64,
    run: u8,
}

/// The high bit of each of eight bytes.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in each of eight bytes.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of each of the eight bytes of `x` (all ASCII) that lies in `lo..=hi`.
const fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    // Each byte is below 0x80 and each addend at most 0x80, so no byte carries into the next.
    let at_least_lo = x + splat(0x80 - lo);
    let above_hi = x + splat(0x7f - hi);
    at_least_lo & !above_hi & HIGH
}

/// For a run position (modulo 4) and the word bytes of eight (bit `i` for byte `i`): the tokens
/// their runs start (one at each word byte whose place in its run is a multiple of 4), and the
/// run position after them.
const RUNS: [[(u8, u8); 256]; 4] = {
    let mut t = [[(0u8, 0u8); 256]; 4];
    let mut start = 0;
    while start < 4 {
        let mut mask = 0;
        while mask < 256 {
            let (mut tokens, mut run, mut i) = (0u8, start as u8, 0);
            while i < 8 {
                if mask >> i & 1 == 1 {
                    if run == 0 {
                        tokens += 1;
                    }
                    run = (run + 1) % 4;
                } else {
                    run = 0;
                }
                i += 1;
            }
            t[start][mask] = (tokens, run);
            mask += 1;
        }
        start += 1;
    }
    t
};

impl Count {
    /// Eight ASCII bytes (little-endian in `x`): letters and digits by range, white space, and
    /// every other byte one token.
    fn eight_ascii(&mut self, x: u64) {
        let lower = x | splat(0x20);
        let word = in_range(lower, b'a', b'z') | in_range(x, b'0', b'9');
        let space = in_range(x, b'\t', b'\r') | in_range(x, b' ', b' ');
        let symbols = !(word | space) & HIGH;
        // The eight high bits gathered into one byte, bit `i` for byte `i`.
        let mask = ((word >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as usize;
        // Their count: the eight bytes of 0 or 1 summed into the top one (no `popcnt` in the
        // baseline x86-64 target).
        let symbols = (symbols >> 7).wrapping_mul(splat(1)) >> 56;
        let (tokens, run) = RUNS[usize::from(self.run)][mask];
        self.tokens += u64::from(tokens) + symbols;
        self.run = run;
    }

    /// One character: part of a word, or a symbol (one token), or neither (white space).
    fn char(&mut self, word: bool, symbol: bool) {
        if word {
            self.tokens += u64::from(self.run == 0);
            self.run = (self.run + 1) % 4;
        } else {
            self.tokens += u64::from(symbol);
            self.run = 0;
        }
    }
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

    /// Long texts of random pieces, so runs of every length cross the eight-byte steps, and
    /// non-ASCII characters fall at every place in them.
    #[test]
    fn long_mixed_texts_count_as_the_character_reading() {
        let pieces: Vec<&str> =
            "a|ab|abc|abcd|abcde|Zz9| |  |\n|\t|.|-|é|東|😀|\u{a0}|\u{1}|0123456789|x_y|Ω"
                .split('|')
                .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize
        };
        for _ in 0..500 {
            let n = next() % 120;
            let text: String = (0..n).map(|_| pieces[next() % pieces.len()]).collect();
            assert_eq!(estimate_tokens(&text), by_chars(&text), "{text:?}");
        }
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
