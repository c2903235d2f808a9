//! The OpenAI request bodies this service accepts: parsed once into typed form, every parameter
//! checked, and any parameter it does not implement refused by name.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::engine::SamplingParams;
use crate::error::ApiError;

/// Fields of /v1/chat/completions this service understands. `model`, `user` and `n` (= 1) are
/// accepted because every client sends them and they change nothing here.
const CHAT_FIELDS: &[&str] = &[
    "messages",
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "user",
];

/// Fields of /v1/completions this service understands.
const COMPLETION_FIELDS: &[&str] = &[
    "prompt",
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "user",
];

/// One chat message, its content flattened to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Rendered through the GGUF's chat template.
    Chat(Vec<Message>),
    /// Tokenized as is.
    Text(String),
}

/// A generation request, endpoint-independent.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    pub prompt: Prompt,
    /// The `model` the client named (this service serves one model whatever it is).
    pub model: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage`: send a last chunk with `usage`.
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub sampling: SamplingParams,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// The parameters both endpoints share.
#[derive(Deserialize)]
struct Common {
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i32>,
    stop: Option<Stop>,
    seed: Option<i64>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    n: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    One(String),
    Many(Vec<String>),
}

/// Parses a /v1/chat/completions body.
pub fn parse_chat(body: &[u8]) -> Result<GenRequest, ApiError> {
    let mut map = parse_object(body, CHAT_FIELDS)?;
    let raw = map.remove("messages").ok_or_else(|| missing("messages"))?;
    let raw: Vec<RawMessage> = field(raw, "messages")?;
    if raw.is_empty() {
        return Err(ApiError::invalid("invalid_value", "'messages' must not be empty"));
    }
    let messages = raw.into_iter().map(message).collect::<Result<Vec<_>, _>>()?;
    common(map, Prompt::Chat(messages))
}

/// Parses a /v1/completions body.
pub fn parse_completion(body: &[u8]) -> Result<GenRequest, ApiError> {
    let mut map = parse_object(body, COMPLETION_FIELDS)?;
    let raw = map.remove("prompt").ok_or_else(|| missing("prompt"))?;
    let text = match field::<RawPrompt>(raw, "prompt")? {
        RawPrompt::One(s) => s,
        RawPrompt::Many(mut v) if v.len() == 1 => v.remove(0),
        RawPrompt::Many(_) => {
            return Err(ApiError::invalid(
                "invalid_value",
                "'prompt' as a list must hold exactly one string (batched prompts are not supported)",
            ));
        }
    };
    if text.is_empty() {
        return Err(ApiError::invalid("invalid_value", "'prompt' must not be empty"));
    }
    common(map, Prompt::Text(text))
}

/// The body as a JSON object whose keys are all in `known`. An unknown key set to `null` is
/// treated as absent: it asks for nothing.
fn parse_object(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid("invalid_json", format!("Request body is not valid JSON: {e}"))
    })?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid("invalid_json", "Request body must be a JSON object"));
    };
    map.retain(|_, v| !v.is_null());
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::unsupported_param(unknown));
    }
    map.remove("user");
    Ok(map)
}

fn missing(name: &str) -> ApiError {
    let mut e = ApiError::invalid(
        "missing_required_parameter",
        format!("Missing required parameter: '{name}'"),
    );
    e.param = Some(name.to_owned());
    e
}

fn field<T: serde::de::DeserializeOwned>(value: Value, name: &str) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        let mut err = ApiError::invalid("invalid_value", format!("Invalid '{name}': {e}"));
        err.param = Some(name.to_owned());
        err
    })
}

fn message(raw: RawMessage) -> Result<Message, ApiError> {
    let role = match raw.role.as_str() {
        "system" | "user" | "assistant" => raw.role,
        // OpenAI's newer name for the system role.
        "developer" => "system".to_owned(),
        other => {
            return Err(ApiError::invalid(
                "invalid_value",
                format!(
                    "Unsupported message role '{other}' (supported: system, developer, user, assistant)"
                ),
            ));
        }
    };
    let content = match raw.content {
        None => String::new(),
        Some(Content::Text(s)) => s,
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            "unsupported_content",
                            format!(
                                "Unsupported content part type '{kind}': only text is supported"
                            ),
                        ));
                    }
                }
            }
            text
        }
    };
    if content.contains('\0') {
        return Err(ApiError::invalid("invalid_value", "Message content must not contain NUL"));
    }
    Ok(Message { role, content })
}

fn common(mut map: Map<String, Value>, prompt: Prompt) -> Result<GenRequest, ApiError> {
    // Changes nothing here (one model is served); kept for the trace's `gen_ai.request.model`.
    let model = match map.remove("model") {
        Some(Value::String(name)) => Some(name),
        _ => None,
    };
    let c: Common = field(Value::Object(map), "request")?;
    if let Some(n) = c.n.filter(|&n| n != 1) {
        return Err(ApiError::invalid(
            "unsupported_value",
            format!("'n' = {n}: only n = 1 is supported"),
        ));
    }
    let defaults = SamplingParams::default();
    let sampling = SamplingParams {
        temperature: range("temperature", c.temperature, 0.0, 2.0)?.unwrap_or(defaults.temperature),
        top_p: range("top_p", c.top_p, 0.0, 1.0)?.unwrap_or(defaults.top_p),
        top_k: c.top_k.unwrap_or(defaults.top_k),
        presence_penalty: range("presence_penalty", c.presence_penalty, -2.0, 2.0)?.unwrap_or(0.0),
        frequency_penalty: range("frequency_penalty", c.frequency_penalty, -2.0, 2.0)?
            .unwrap_or(0.0),
        // OpenAI seeds are 64-bit; llama.cpp's are 32: keep the low bits, deterministically.
        seed: c.seed.map(|s| (s as u64 & 0xffff_ffff) as u32),
    };
    if sampling.top_k < 0 {
        return Err(ApiError::invalid("invalid_value", "'top_k' must be >= 0 (0 disables it)"));
    }
    let max_tokens = c.max_completion_tokens.or(c.max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::invalid("invalid_value", "'max_tokens' must be at least 1"));
    }
    let stop = match c.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid("invalid_value", "'stop' takes up to 4 non-empty strings"));
    }
    let stream = c.stream.unwrap_or(false);
    if c.stream_options.is_some() && !stream {
        return Err(ApiError::invalid(
            "invalid_value",
            "'stream_options' is only allowed with 'stream': true",
        ));
    }
    let include_usage = c.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
    Ok(GenRequest { prompt, model, stream, include_usage, max_tokens, stop, sampling })
}

fn range(name: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<Option<f32>, ApiError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => {
            let mut e = ApiError::invalid(
                "invalid_value",
                format!("'{name}' = {x} is outside {lo}..={hi}"),
            );
            e.param = Some(name.to_owned());
            Err(e)
        }
        _ => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameter_is_named() {
        let err = parse_chat(br#"{"messages":[{"role":"user","content":"hi"}],"logprobs":true}"#)
            .unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.param.as_deref(), Some("logprobs"));
        assert!(err.message.contains("logprobs"));
    }

    #[test]
    fn null_unknown_parameter_is_absent() {
        let req = parse_chat(br#"{"messages":[{"role":"user","content":"hi"}],"logprobs":null}"#);
        assert!(req.is_ok());
    }

    #[test]
    fn parses_parameters() {
        let req = parse_chat(
            br#"{"model":"x","messages":[{"role":"developer","content":[{"type":"text","text":"a"}]},
                {"role":"user","content":"b"}],"temperature":0,"top_k":5,"stop":"\n","seed":7,
                "stream":true,"stream_options":{"include_usage":true},"max_tokens":9,"n":1}"#,
        )
        .unwrap();
        assert_eq!(
            req.prompt,
            Prompt::Chat(vec![
                Message { role: "system".into(), content: "a".into() },
                Message { role: "user".into(), content: "b".into() },
            ])
        );
        assert_eq!(req.stop, vec!["\n".to_owned()]);
        assert_eq!(req.sampling.seed, Some(7));
        assert_eq!(req.sampling.top_k, 5);
        assert!(req.stream && req.include_usage);
        assert_eq!(req.max_tokens, Some(9));
    }

    #[test]
    fn rejects_bad_values() {
        for body in [
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#,
            r#"{"messages":[{"role":"tool","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#,
            r#"{"prompt":"x"}"#,
            r#"[1]"#,
        ] {
            let err = parse_chat(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, 400, "{body}");
        }
    }

    #[test]
    fn completion_prompt_forms() {
        assert!(parse_completion(br#"{"prompt":"a"}"#).is_ok());
        assert!(parse_completion(br#"{"prompt":["a"]}"#).is_ok());
        assert!(parse_completion(br#"{"prompt":["a","b"]}"#).is_err());
        assert!(parse_completion(br#"{"prompt":"a","messages":[]}"#).is_err());
    }

    /// A cheap stand-in for a fuzz target: mutated bodies are answered, never a panic.
    #[test]
    fn mutated_bodies_never_panic() {
        let seed =
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
            "prompt":"p","stop":["a","b"],"temperature":0.5,"top_k":3,"seed":-1,"n":1,"stream":true,
            "stream_options":{"include_usage":true},"max_tokens":4}"#;
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let mut body = seed.to_vec();
            for _ in 0..rng.usize(1..8) {
                let i = rng.usize(..body.len());
                match rng.u8(..3) {
                    0 => body[i] = rng.u8(..),
                    1 => {
                        body.remove(i);
                    }
                    _ => body.insert(i, rng.u8(..)),
                }
            }
            let _ = parse_chat(&body);
            let _ = parse_completion(&body);
        }
    }
}
