//! The OpenAI response shapes this service writes: whole answers, stream chunks, model lists.

use serde_json::{Value, json};

use crate::engine::{FinishReason, Usage};

/// Which endpoint a response belongs to; it decides the object names and field layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

impl Endpoint {
    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Completion => "/v1/completions",
        }
    }
}

/// What every response and chunk of one request repeats.
#[derive(Debug, Clone)]
pub struct Meta {
    pub endpoint: Endpoint,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
}

impl Meta {
    pub fn new(endpoint: Endpoint, model: String, include_usage: bool) -> Self {
        let prefix = match endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completion => "cmpl",
        };
        Self {
            endpoint,
            id: format!("{prefix}-{:016x}", fastrand::u64(..)),
            created: unix_now(),
            model,
            include_usage,
        }
    }

    /// The non-streamed answer.
    pub fn response(&self, text: &str, reason: FinishReason, usage: Usage) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": reason.as_str(),
            }),
            Endpoint::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": reason.as_str(),
            }),
        };
        json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage_json(usage),
        })
    }

    /// The first chat chunk, which carries the role (completions have none).
    pub fn role_chunk(&self) -> Option<Value> {
        (self.endpoint == Endpoint::Chat)
            .then(|| self.chunk(json!({"role": "assistant", "content": ""}), None))
    }

    /// A chunk of generated text.
    pub fn text_chunk(&self, text: &str) -> Value {
        self.chunk(json!({"content": text}), None)
    }

    /// The chunk that carries `finish_reason`.
    pub fn finish_chunk(&self, reason: FinishReason) -> Value {
        match self.endpoint {
            Endpoint::Chat => self.chunk(json!({}), Some(reason)),
            Endpoint::Completion => self.chunk(json!({"content": ""}), Some(reason)),
        }
    }

    /// The last chunk when `stream_options.include_usage` is set: no choices, just usage.
    pub fn usage_chunk(&self, usage: Usage) -> Value {
        json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage_json(usage),
        })
    }

    fn chunk(&self, delta: Value, reason: Option<FinishReason>) -> Value {
        let reason = reason.map(FinishReason::as_str);
        let choice = match self.endpoint {
            Endpoint::Chat => {
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason})
            }
            Endpoint::Completion => json!({
                "index": 0,
                "text": delta.get("content").cloned().unwrap_or(Value::String(String::new())),
                "logprobs": null,
                "finish_reason": reason,
            }),
        };
        let mut chunk = json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        if self.include_usage {
            // OpenAI sends `usage: null` on every chunk but the last when usage was asked for.
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }
}

fn usage_json(u: Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

/// GET /v1/models.
pub fn models(model: &str, created: u64) -> Value {
    json!({
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "switchyard"}],
    })
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
