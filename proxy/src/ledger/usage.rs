//! Token usage of one request: read from an upstream's OpenAI answer (a JSON body, or the final
//! `usage` chunk of a stream asked for with `stream_options.include_usage`), or estimated from
//! text without a tokenizer when no usage came.
//!
//! The estimate (documented in docs/limits.md): every run of letters and digits costs one token
//! per four characters started (`hello` 2, `a` 1), every other visible character (punctuation,
//! symbols, and each CJK, kana or Hangul character) one token, white space nothing; each chat
//! message adds 4 tokens of framing and a chat prompt 3 for the reply's priming, as OpenAI's
//! counting guide does. It errs high rather than low, since it reserves at admission: a word of
//! five to eight letters costs 2 where a BPE tokenizer usually spends 1; settlement replaces it
//! with the upstream's count whenever one comes.

use serde::Serialize;
use serde_json::Value;

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

/// The `usage` of a whole OpenAI answer (chat, completions, embeddings); `None` when the body is
/// not JSON or carries no usage.
pub fn usage_from_body(body: &[u8]) -> Option<Usage> {
    let value: Value = serde_json::from_slice(body).ok()?;
    usage_from_value(value.get("usage")?)
}

/// The usage of one SSE chunk's `data` (without the `data: ` prefix): only the final chunk of
/// `stream_options.include_usage` carries one; every other chunk (`"usage": null` or none) and
/// `[DONE]` give `None`.
pub fn usage_from_chunk(data: &str) -> Option<Usage> {
    let data = data.trim();
    if !data.starts_with('{') {
        return None;
    }
    usage_from_body(data.as_bytes())
}

/// Whether a stream chunk is the usage-only chunk `include_usage` adds (no choices): the one to
/// strip again when the client did not ask for usage.
pub fn is_usage_only_chunk(data: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(data.trim()) else {
        return false;
    };
    let no_choices = value.get("choices").and_then(Value::as_array).is_none_or(Vec::is_empty);
    no_choices && value.get("usage").is_some_and(|u| u.is_object())
}

fn usage_from_value(usage: &Value) -> Option<Usage> {
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64);
    let prompt = field(usage, "prompt_tokens").or_else(|| field(usage, "input_tokens"));
    let completion =
        field(usage, "completion_tokens").or_else(|| field(usage, "output_tokens")).unwrap_or(0);
    let cached = ["prompt_tokens_details", "input_tokens_details"]
        .iter()
        .find_map(|details| usage.get(*details).and_then(|d| field(d, "cached_tokens")))
        .unwrap_or(0);
    let prompt = match prompt {
        Some(prompt) => prompt,
        // Embeddings report only a total when a provider omits prompt_tokens.
        None => field(usage, "total_tokens")?.checked_sub(completion)?,
    };
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_prompt_tokens: cached.min(prompt),
    })
}

/// Tokens of a text, estimated without a tokenizer (see the module documentation).
pub fn estimate_tokens(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut run = 0u64;
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
    fn usage_is_read_from_a_chat_answer() {
        let body = br#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,
            "total_tokens":17,"prompt_tokens_details":{"cached_tokens":8}}}"#;
        let usage = usage_from_body(body).unwrap();
        assert_eq!(
            usage,
            Usage { prompt_tokens: 12, completion_tokens: 5, cached_prompt_tokens: 8 }
        );
        assert_eq!(usage.total(), 17);
    }

    #[test]
    fn embeddings_and_bodies_without_usage() {
        let usage = usage_from_body(br#"{"data":[],"usage":{"prompt_tokens":7,"total_tokens":7}}"#);
        assert_eq!(usage, Some(Usage { prompt_tokens: 7, ..Usage::default() }));
        let total_only = usage_from_body(br#"{"usage":{"total_tokens":9}}"#);
        assert_eq!(total_only, Some(Usage { prompt_tokens: 9, ..Usage::default() }));
        assert_eq!(usage_from_body(br#"{"choices":[]}"#), None);
        assert_eq!(usage_from_body(b"not json"), None);
    }

    #[test]
    fn only_the_final_stream_chunk_carries_usage() {
        let content = r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#;
        let last = r#" {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}} "#;
        assert_eq!(usage_from_chunk(content), None);
        assert_eq!(usage_from_chunk("[DONE]"), None);
        assert_eq!(usage_from_chunk(last).map(|u| u.total()), Some(5));
        assert!(is_usage_only_chunk(last));
        assert!(!is_usage_only_chunk(content));
        assert!(!is_usage_only_chunk("[DONE]"));
    }

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
