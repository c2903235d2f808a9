//! The OpenAI request, parsed once into typed form, with the raw bytes kept for passthrough.
//!
//! Only the fields the proxy (and later its plugins) reason about are typed; everything else is
//! kept in `extra` as raw JSON text ([`Extra`]) so an edited request re-serialises without losing
//! fields, and a large unknown field costs its own size in memory, not a tree of `Value`s. When
//! nothing edits a request, the original bytes are forwarded unchanged.

mod extra;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use extra::Extra;
use extra::object_with_extra;

use crate::error::ProxyError;

/// The API operations the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    ImagesGenerations,
    Models,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Self; 5] = [
        Self::ChatCompletions,
        Self::Completions,
        Self::Embeddings,
        Self::ImagesGenerations,
        Self::Models,
    ];

    /// Maps a request path to an endpoint; `None` for paths the proxy does not serve.
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path.trim_end_matches('/') {
            "/v1/chat/completions" => Self::ChatCompletions,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/images/generations" => Self::ImagesGenerations,
            "/v1/models" => Self::Models,
            _ => return None,
        })
    }

    /// The client-facing path, e.g. `/v1/chat/completions`.
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::ImagesGenerations => "/v1/images/generations",
            Self::Models => "/v1/models",
        }
    }

    /// The path below an upstream's `base_url` (which already ends in `/v1`).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::ImagesGenerations => "/images/generations",
            Self::Models => "/models",
        }
    }

    /// The HTTP method the endpoint takes.
    pub fn method(self) -> http::Method {
        match self {
            Self::Models => http::Method::GET,
            _ => http::Method::POST,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::ImagesGenerations => "images_generations",
            Self::Models => "models",
        }
    }
}

/// A parsed request body and what the pipeline needs to know about it.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// Which operation.
    pub endpoint: Endpoint,
    /// The body exactly as the client sent it.
    pub raw: Bytes,
    /// The typed body.
    pub body: RequestBody,
    /// Whether the body was edited since parsing; decides between `raw` and re-serialising.
    pub edited: bool,
}

/// The typed body, one variant per POST endpoint.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Chat(ChatRequest),
    Completion(CompletionRequest),
    Embedding(EmbeddingRequest),
    Image(ImageRequest),
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopSequences>,
    /// Every other field, kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    ChatRequest,
    "a chat completion request object",
    required { model: "model", messages: "messages" },
    optional {
        stream: "stream",
        temperature: "temperature",
        top_p: "top_p",
        n: "n",
        max_tokens: "max_tokens",
        seed: "seed",
        stop: "stop"
    }
);

/// One chat message. `content` may be null (assistant tool calls) or a list of parts.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: Option<MessageContent>,
    /// `name`, `tool_calls`, `tool_call_id`, ... verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    ChatMessage,
    "a chat message object",
    required { role: "role" },
    optional { content: "content" }
);

/// Message content: plain text or multimodal parts.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// By hand rather than `untagged`, which would first copy the whole content (a multi-megabyte
/// text or image part) into serde's internal buffer and then try each variant on it.
impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Content;
        impl<'de> serde::de::Visitor<'de> for Content {
            type Value = MessageContent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(text))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        deserializer.deserialize_any(Content)
    }
}

/// One part of multimodal content; only text parts carry text the proxy looks at.
#[derive(Debug, Clone, Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `image_url`, `input_audio`, `file`, ... verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    ContentPart,
    "a content part object",
    required { kind: "type" },
    optional { text: "text" }
);

/// `stop`: one sequence or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopSequences {
    One(String),
    Many(Vec<String>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionRequest {
    pub model: String,
    /// A string, a list of strings, or token ids.
    pub prompt: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    CompletionRequest,
    "a completion request object",
    required { model: "model", prompt: "prompt" },
    optional { stream: "stream" }
);

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingRequest {
    pub model: String,
    /// A string, a list of strings, or token ids.
    pub input: Value,
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    EmbeddingRequest,
    "an embeddings request object",
    required { model: "model", input: "input" },
    optional {}
);

/// `POST /v1/images/generations`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub prompt: String,
    #[serde(flatten)]
    pub extra: Extra,
}

object_with_extra!(
    ImageRequest,
    "an image generation request object",
    required { prompt: "prompt" },
    optional { model: "model" }
);

impl ParsedRequest {
    /// Parses `raw` as the body of `endpoint`. Malformed JSON, a missing field or a field of the
    /// wrong type is a 400 that names the field.
    pub fn parse(endpoint: Endpoint, raw: Bytes) -> Result<Self, ProxyError> {
        let body = match endpoint {
            Endpoint::ChatCompletions => {
                let chat: ChatRequest = decode(&raw)?;
                check_roles(&chat)?;
                RequestBody::Chat(chat)
            }
            Endpoint::Completions => RequestBody::Completion(decode(&raw)?),
            Endpoint::Embeddings => RequestBody::Embedding(decode(&raw)?),
            Endpoint::ImagesGenerations => RequestBody::Image(decode(&raw)?),
            Endpoint::Models => {
                return Err(ProxyError::Internal("GET /v1/models has no request body".into()));
            }
        };
        Ok(Self { endpoint, raw, body, edited: false })
    }

    /// Whether the client asked for server-sent events.
    pub fn stream(&self) -> bool {
        match &self.body {
            RequestBody::Chat(r) => r.stream,
            RequestBody::Completion(r) => r.stream,
            RequestBody::Embedding(_) | RequestBody::Image(_) => None,
        }
        .unwrap_or(false)
    }

    /// The requested model, where the endpoint has one.
    pub fn model(&self) -> Option<&str> {
        match &self.body {
            RequestBody::Chat(r) => Some(&r.model),
            RequestBody::Completion(r) => Some(&r.model),
            RequestBody::Embedding(r) => Some(&r.model),
            RequestBody::Image(r) => r.model.as_deref(),
        }
    }

    /// Replaces the model, marking the request edited when it changes.
    pub fn set_model(&mut self, model: &str) {
        if self.model() == Some(model) {
            return;
        }
        let slot = match &mut self.body {
            RequestBody::Chat(r) => &mut r.model,
            RequestBody::Completion(r) => &mut r.model,
            RequestBody::Embedding(r) => &mut r.model,
            RequestBody::Image(r) => r.model.insert(String::new()),
        };
        model.clone_into(slot);
        self.edited = true;
    }

    /// The stream's `stream_options`, for the endpoints that stream.
    fn stream_extra(&mut self) -> Option<&mut Extra> {
        match &mut self.body {
            RequestBody::Chat(r) => Some(&mut r.extra),
            RequestBody::Completion(r) => Some(&mut r.extra),
            RequestBody::Embedding(_) | RequestBody::Image(_) => None,
        }
    }

    /// Whether the client asked for a stream's usage chunk (`stream_options.include_usage`).
    pub fn usage_asked(&self) -> bool {
        #[derive(serde::Deserialize)]
        struct StreamOptions {
            include_usage: Option<bool>,
        }
        let extra = match &self.body {
            RequestBody::Chat(r) => &r.extra,
            RequestBody::Completion(r) => &r.extra,
            RequestBody::Embedding(_) | RequestBody::Image(_) => return false,
        };
        extra.parse::<StreamOptions>("stream_options").and_then(|o| o.include_usage) == Some(true)
    }

    /// Asks the upstream for a stream's usage chunk (`stream_options.include_usage: true`, other
    /// stream options kept), so that a stream is counted from what the upstream reports. The
    /// proxy strips that chunk again for a client that did not ask for it.
    pub fn ask_for_usage(&mut self) {
        if !self.stream() || self.usage_asked() {
            return;
        }
        let Some(extra) = self.stream_extra() else { return };
        let mut options: serde_json::Map<String, serde_json::Value> =
            extra.parse("stream_options").unwrap_or_default();
        options.insert("include_usage".into(), serde_json::Value::Bool(true));
        let Ok(raw) = serde_json::value::to_raw_value(&options) else { return };
        extra.insert("stream_options".into(), raw);
        self.edited = true;
    }

    /// The bytes to send upstream: the original when unedited, else the typed form re-serialised.
    pub fn to_bytes(&self) -> Result<Bytes, ProxyError> {
        if !self.edited {
            return Ok(self.raw.clone());
        }
        let encoded = match &self.body {
            RequestBody::Chat(r) => serde_json::to_vec(r),
            RequestBody::Completion(r) => serde_json::to_vec(r),
            RequestBody::Embedding(r) => serde_json::to_vec(r),
            RequestBody::Image(r) => serde_json::to_vec(r),
        };
        encoded.map(Bytes::from).map_err(|e| ProxyError::Internal(format!("re-encoding body: {e}")))
    }
}

impl ParsedRequest {
    /// Writes everything in the request that can change its answer into `out`: the typed body as
    /// it will be forwarded (after plugin edits and routing), re-serialised so that formatting does
    /// not matter, without `stream` and `stream_options`, which only choose the framing (the cache
    /// replays a stored answer as JSON or SSE). Token-id prompts, every content part (images,
    /// audio, files), `name`, `tool_calls`, `tool_call_id`, `tools`, `response_format`, `user`
    /// and every unknown field are part of it.
    pub fn write_identity(&self, out: &mut impl std::io::Write) -> Result<(), ProxyError> {
        fn without_framing(extra: &Extra) -> Extra {
            let mut extra = extra.clone();
            extra.remove("stream");
            extra.remove("stream_options");
            extra
        }
        let written = match &self.body {
            RequestBody::Chat(r) => {
                let mut r = r.clone();
                r.stream = None;
                r.extra = without_framing(&r.extra);
                serde_json::to_writer(out, &r)
            }
            RequestBody::Completion(r) => {
                let mut r = r.clone();
                r.stream = None;
                r.extra = without_framing(&r.extra);
                serde_json::to_writer(out, &r)
            }
            RequestBody::Embedding(r) => serde_json::to_writer(out, r),
            RequestBody::Image(r) => serde_json::to_writer(out, r),
        };
        written.map_err(|e| ProxyError::Internal(format!("hashing the request: {e}")))
    }
}

/// Refuses message roles in the namespace of the host's own plugin entries (`field:...`,
/// `binary:...`, see [`crate::texts`]): plugins tell those entries by that prefix, so a client
/// could otherwise label a message `binary:x` and have a redactor skip its text as a binary part
/// (found by fuzzing).
fn check_roles(chat: &ChatRequest) -> Result<(), ProxyError> {
    let reserved = [crate::texts::FIELD, crate::texts::BINARY];
    for (i, message) in chat.messages.iter().enumerate() {
        if reserved.iter().any(|prefix| message.role.starts_with(prefix)) {
            let message = format!(
                "invalid value for `messages[{i}].role`: roles starting with `field:` or \
                 `binary:` are reserved"
            );
            return Err(ProxyError::invalid(message, Some(format!("messages[{i}].role"))));
        }
    }
    Ok(())
}

/// Deserialises with the failing field's path in the error. The path is tracked only once a
/// body has failed: tracking it costs an allocation per key, on every request.
fn decode<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ProxyError> {
    match serde_json::from_slice(raw) {
        Ok(value) => Ok(value),
        Err(_) => decode_tracked(raw),
    }
}

/// [`decode`] with the path of the failing field tracked.
fn decode_tracked<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ProxyError> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ProxyError::InvalidRequest {
                message: format!("request body is not valid JSON: {inner}"),
                param: None,
                code: "invalid_json",
            };
        }
        let param = (path != ".").then_some(path);
        let message = match &param {
            Some(p) => format!("invalid value for `{p}`: {inner}"),
            None => format!("invalid request body: {inner}"),
        };
        ProxyError::InvalidRequest { message, param, code: "invalid_type" }
    })?;
    deserializer.end().map_err(|e| ProxyError::InvalidRequest {
        message: format!("request body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<ParsedRequest, ProxyError> {
        ParsedRequest::parse(Endpoint::ChatCompletions, Bytes::from(body.to_string()))
    }

    #[test]
    fn unedited_requests_forward_the_original_bytes() {
        let body =
            r#"{"model":"m", "messages":[{"role":"user","content":"hi"}], "x_vendor":{"a":1}}"#;
        let parsed = chat(body).unwrap();
        assert_eq!(parsed.to_bytes().unwrap(), body.as_bytes());
    }

    #[test]
    fn edits_keep_unknown_fields() {
        let body = r#"{"model":"m","messages":[],"x_vendor":{"a":1},"temperature":0}"#;
        let mut parsed = chat(body).unwrap();
        parsed.set_model("other");
        let out: Value = serde_json::from_slice(&parsed.to_bytes().unwrap()).unwrap();
        assert_eq!(out["model"], "other");
        assert_eq!(out["x_vendor"]["a"], 1);
        assert_eq!(out["temperature"], 0.0);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = chat(r#"{"model":"m","messages":[{"role":5}]}"#).unwrap_err();
        let json = err.to_json();
        assert_eq!(json["error"]["param"], "messages[0].role");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn malformed_json_is_a_400() {
        let err = chat(r#"{"model":"m","#).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
        let err = chat(r#"{"model":"m","messages":[]} trailing"#).unwrap_err();
        assert_eq!(err.code(), "invalid_json");
    }

    #[test]
    fn roles_in_the_plugin_entries_namespace_are_refused() {
        for role in ["binary:messages[0].content[1]", "field:user"] {
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"a"}},{{"role":"{role}","content":"ann@example.com"}}]}}"#
            );
            let err = chat(&body).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
            assert_eq!(err.to_json()["error"]["param"], "messages[1].role");
        }
        assert!(chat(r#"{"model":"m","messages":[{"role":"sy:stem","content":"a"}]}"#).is_ok());
    }

    #[test]
    fn missing_fields_are_named() {
        let err = chat(r#"{"messages":[]}"#).unwrap_err();
        assert!(err.to_string().contains("model"), "{err}");
    }

    #[test]
    fn a_stream_asks_for_usage_and_keeps_its_other_stream_options() {
        let raw = r#"{"model":"m","stream":true,"stream_options":{"x":1},"messages":[]}"#;
        let mut request = ParsedRequest::parse(Endpoint::ChatCompletions, raw.into()).unwrap();
        assert!(!request.usage_asked());
        request.ask_for_usage();
        let sent: serde_json::Value = serde_json::from_slice(&request.to_bytes().unwrap()).unwrap();
        assert_eq!(sent["stream_options"], serde_json::json!({"x": 1, "include_usage": true}));

        let asked =
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
        let mut request = ParsedRequest::parse(Endpoint::ChatCompletions, asked.into()).unwrap();
        assert!(request.usage_asked());
        request.ask_for_usage();
        assert!(!request.edited, "nothing to add");
        let plain = r#"{"model":"m","messages":[]}"#;
        let mut request = ParsedRequest::parse(Endpoint::ChatCompletions, plain.into()).unwrap();
        request.ask_for_usage();
        assert!(!request.edited, "not a stream");
    }
}
