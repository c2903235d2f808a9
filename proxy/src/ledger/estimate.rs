//! What a parsed request may use, for its admission: its prompt estimated from every text it
//! carries (the same entries plugins see), and the completion tokens it allows. (Streams ask
//! their upstream for usage in `ParsedRequest::ask_for_usage`.)

use crate::plugin::Message;
use crate::request::RequestBody;

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
