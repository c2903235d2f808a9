//! What a parsed request may use, for its admission: its prompt estimated from every text it
//! carries (the same entries plugins see), and the completion tokens it allows; and asking a
//! streamed chat request's upstream for its usage.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::plugin::Message;
use crate::request::{ParsedRequest, RequestBody};

use super::usage::{estimate_chat_tokens, estimate_tokens};

/// Prompt tokens of a request from its text entries ([`crate::texts::entries`]): chat messages
/// with their framing, other text fields (tools, their schemas) as plain text. Parts without
/// text (images, audio) count nothing: settlement charges them from the upstream's usage.
pub fn prompt_tokens(body: &RequestBody, entries: &[Message]) -> u64 {
    match body {
        RequestBody::Chat(_) => {
            let (messages, fields): (Vec<&Message>, Vec<&Message>) =
                entries.iter().partition(|m| !m.role.starts_with(crate::texts::FIELD));
            estimate_chat_tokens(messages.iter().map(|m| m.content.as_str()))
                + fields.iter().map(|m| estimate_tokens(&m.content)).sum::<u64>()
        }
        _ => entries.iter().map(|m| estimate_tokens(&m.content)).sum(),
    }
}

/// The completion tokens a request allows: `max_completion_tokens` or `max_tokens`, times `n`
/// choices; `Some(0)` for endpoints that generate no tokens (embeddings, images); `None` when the
/// request sets no bound (the tenant's `default_max_tokens` applies). Legacy completions default
/// to 16, as OpenAI's API does.
pub fn max_tokens(body: &RequestBody) -> Option<u64> {
    let (bound, n) = match body {
        RequestBody::Chat(chat) => {
            let bound =
                chat.extra.parse::<u64>("max_completion_tokens").or(chat.max_tokens.map(u64::from));
            (bound, chat.n.map_or(1, u64::from))
        }
        RequestBody::Completion(c) => {
            let bound = c.extra.parse::<u64>("max_tokens").unwrap_or(16);
            (Some(bound), c.extra.parse::<u64>("n").unwrap_or(1))
        }
        RequestBody::Embedding(_) | RequestBody::Image(_) => (Some(0), 1),
    };
    bound.map(|b| b.saturating_mul(n.max(1)))
}

/// Makes a streamed chat request ask its upstream for usage (`stream_options.include_usage`), so
/// the ledger can settle on the real count. Returns whether the client asked for it itself: when
/// not, strip the usage-only chunk ([`super::usage::is_usage_only_chunk`]) from what it gets.
/// Other requests are left alone (and answer `true`: nothing to strip).
pub fn ask_stream_usage(request: &mut ParsedRequest) -> bool {
    let RequestBody::Chat(chat) = &mut request.body else { return true };
    if chat.stream != Some(true) {
        return true;
    }
    let mut options = match chat.extra.parse::<Value>("stream_options") {
        Some(Value::Object(options)) => options,
        _ => serde_json::Map::new(),
    };
    if options.get("include_usage") == Some(&Value::Bool(true)) {
        return true;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    if let Ok(raw) = RawValue::from_string(Value::Object(options).to_string()) {
        chat.extra.insert("stream_options".into(), raw);
        request.edited = true;
    }
    false
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::request::{Endpoint, ParsedRequest};

    fn parse(endpoint: Endpoint, json: &str) -> RequestBody {
        ParsedRequest::parse(endpoint, Bytes::from(json.to_string())).unwrap().body
    }

    #[test]
    fn bounds_come_from_the_request() {
        let chat = |extra: &str| {
            parse(Endpoint::ChatCompletions, &format!(r#"{{"model":"m","messages":[]{extra}}}"#))
        };
        assert_eq!(max_tokens(&chat("")), None);
        assert_eq!(max_tokens(&chat(r#","max_tokens":100"#)), Some(100));
        assert_eq!(max_tokens(&chat(r#","max_tokens":100,"n":3"#)), Some(300));
        assert_eq!(max_tokens(&chat(r#","max_tokens":100,"max_completion_tokens":50"#)), Some(50));
        let completion = parse(Endpoint::Completions, r#"{"model":"m","prompt":"hi"}"#);
        assert_eq!(max_tokens(&completion), Some(16));
        let embedding = parse(Endpoint::Embeddings, r#"{"model":"m","input":"hi"}"#);
        assert_eq!(max_tokens(&embedding), Some(0));
    }

    #[test]
    fn streamed_chats_ask_for_usage_once() {
        let request = |json: &str| {
            ParsedRequest::parse(Endpoint::ChatCompletions, Bytes::from(json.to_string())).unwrap()
        };
        let mut plain = request(r#"{"model":"m","messages":[],"stream":true}"#);
        assert!(!ask_stream_usage(&mut plain));
        assert!(plain.edited);
        let body = String::from_utf8(plain.to_bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains(r#""stream_options":{"include_usage":true}"#), "{body}");
        let mut kept = request(
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"x":1,"include_usage":false}}"#,
        );
        assert!(!ask_stream_usage(&mut kept));
        let body = String::from_utf8(kept.to_bytes().unwrap().to_vec()).unwrap();
        assert!(body.contains(r#""stream_options":{"x":1,"include_usage":true}"#), "{body}");
        let mut asked = request(
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert!(ask_stream_usage(&mut asked));
        assert!(!asked.edited);
        let mut unstreamed = request(r#"{"model":"m","messages":[]}"#);
        assert!(ask_stream_usage(&mut unstreamed));
        assert!(!unstreamed.edited);
    }

    #[test]
    fn the_prompt_is_every_text_the_request_carries() {
        let body = parse(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},
                {"role":"user","content":"Hello, world!"}],
                "tools":[{"type":"function","function":{"name":"f","description":"Look up"}}]}"#,
        );
        let (entries, _) = crate::texts::entries(&body);
        let plain = 4 + estimate_tokens("Be brief.") + 4 + estimate_tokens("Hello, world!") + 3;
        let with_tools = prompt_tokens(&body, &entries);
        assert!(with_tools > plain, "{with_tools} vs {plain}");
        let messages_only: Vec<_> = entries.iter().take(2).cloned().collect();
        assert_eq!(prompt_tokens(&body, &messages_only), plain);
    }
}
