//! The proxy's error type, who each error blames, and the one function that turns an error into an
//! OpenAI-shaped HTTP response (`{"error": {"message", "type", "param", "code"}}`).

use http::{Response, StatusCode};

use crate::body::{self, Body};
use crate::plugin::LoadError;

/// An error with its sources, `: `-joined (connection errors keep their detail there).
pub use switchyard_otel::error_chain as chain;

/// Who failed: decides the status class and the `type` field clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client sent something we refuse (4xx).
    Client,
    /// Every upstream we tried failed or timed out (502/504).
    Upstream,
    /// Switchyard itself (500/503).
    Proxy,
}

/// Everything a request can fail with before an upstream answer is relayed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The body is not valid JSON, or a field has the wrong type or is missing.
    #[error("{message}")]
    InvalidRequest { message: String, param: Option<String>, code: &'static str },
    /// No such endpoint.
    #[error("unknown path `{0}`; see GET /v1/models and the OpenAI API reference")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("method {method} is not allowed on `{path}`")]
    MethodNotAllowed { method: String, path: String },
    /// The body exceeds `server.max_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// The client did not send its whole body within `server.body_read_timeout_ms`.
    #[error("request body was not received within {0} ms")]
    BodyTimeout(u64),
    /// The client's connection failed while we read its body.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// Every upstream in the chain failed before answering (connect error, 5xx, 429, broken stream).
    #[error("no upstream could answer; tried {tried}: {last}")]
    AllUpstreamsFailed { tried: String, last: String },
    /// The last upstream tried timed out before its first byte.
    #[error("upstream `{upstream}` timed out {phase}; tried {tried}")]
    UpstreamTimeout { upstream: String, phase: &'static str, tried: String },
    /// A stream broke after it was committed to the client; sent as the stream's last event.
    #[error("upstream `{upstream}` failed mid-stream: {reason}")]
    StreamInterrupted { upstream: String, reason: String },
    /// Every upstream in the chain is disabled (for example, its API key is not set).
    #[error("no upstream is available for this request: {0}")]
    NoUpstream(String),
    /// Missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// A fail-closed plugin failed (trap, deadline, memory cap, invalid decision, busy). The message
    /// names the plugin and the failure kind, never guest text.
    #[error("{message}")]
    PluginRefused { status: u16, message: String },
    /// A bug or an unexpected condition inside the proxy.
    #[error("internal error: {0}")]
    Internal(String),
    /// A shared resource limit is reached (the request-body budget); the client may retry.
    #[error("{0}")]
    Overloaded(String),
    /// Admin API: a plugin (re)load was refused (read, signature, compile, probe, config); the old
    /// set stays live. `plugin` names the culprit when there is one.
    #[error("{message}")]
    PluginLoad { status: u16, plugin: Option<String>, message: String },
    /// The tenant is over a limit or budget, or the ledger is unavailable and fails closed. Its
    /// response carries `retry-after` and the `x-ratelimit-*` headers.
    #[error("{}", .0.message())]
    Limited(Box<crate::ledger::Refusal>),
    /// Admin API: plugin endpoints on a proxy started without a `[plugins]` section.
    #[error(
        "plugins are not enabled: add a [plugins] section (dir = \"...\") and [[plugin]] entries \
         to the config and restart; see docs/plugins.md"
    )]
    PluginsDisabled,
}

impl ProxyError {
    /// A 400 for a bad field, naming it.
    pub fn invalid(message: impl Into<String>, param: Option<String>) -> Self {
        Self::InvalidRequest { message: message.into(), param, code: "invalid_request" }
    }

    /// Who failed.
    pub fn blame(&self) -> Blame {
        match self {
            Self::InvalidRequest { .. }
            | Self::NotFound(_)
            | Self::MethodNotAllowed { .. }
            | Self::PayloadTooLarge { .. }
            | Self::BodyTimeout(_)
            | Self::BodyRead(_)
            | Self::Unauthorized(_)
            | Self::PluginsDisabled => Blame::Client,
            Self::Limited(refusal) if refusal.status().is_client_error() => Blame::Client,
            Self::Limited(_) => Blame::Proxy,
            // A refused plugin is the operator's input; a dead compile task is ours.
            Self::PluginLoad { status, .. } if *status < 500 => Blame::Client,
            Self::AllUpstreamsFailed { .. }
            | Self::UpstreamTimeout { .. }
            | Self::StreamInterrupted { .. }
            | Self::NoUpstream(_) => Blame::Upstream,
            Self::Internal(_)
            | Self::Overloaded(_)
            | Self::PluginRefused { .. }
            | Self::PluginLoad { .. } => Blame::Proxy,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::AllUpstreamsFailed { .. }
            | Self::StreamInterrupted { .. }
            | Self::NoUpstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PluginRefused { status, .. } | Self::PluginLoad { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::PluginsDisabled => StatusCode::NOT_FOUND,
            Self::Limited(refusal) => refusal.status(),
        }
    }

    /// The machine-readable `code` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { code, .. } => code,
            Self::NotFound(_) => "unknown_url",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::BodyTimeout(_) => "request_timeout",
            Self::BodyRead(_) => "body_read_error",
            Self::AllUpstreamsFailed { .. } => "upstream_unavailable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::NoUpstream(_) => "no_upstream",
            Self::StreamInterrupted { .. } => "stream_interrupted",
            Self::Unauthorized(_) => "invalid_api_key",
            Self::Internal(_) => "internal_error",
            Self::Overloaded(_) => "server_overloaded",
            Self::PluginRefused { .. } => "plugin_failed",
            Self::PluginLoad { status: 404, .. } => "unknown_plugin",
            Self::PluginLoad { .. } => "plugin_rejected",
            Self::PluginsDisabled => "plugins_not_configured",
            Self::Limited(refusal) => refusal.code(),
        }
    }

    /// The OpenAI error object, without the HTTP wrapping (also used for SSE error events).
    pub fn to_json(&self) -> serde_json::Value {
        let kind = match (self.blame(), self) {
            (_, Self::Unauthorized(_)) => "authentication_error",
            (Blame::Client, _) => "invalid_request_error",
            (Blame::Upstream, Self::UpstreamTimeout { .. }) => "timeout_error",
            (Blame::Upstream, _) => "upstream_error",
            (Blame::Proxy, _) => "server_error",
        };
        let param = match self {
            Self::InvalidRequest { param, .. } => param.clone(),
            Self::PluginLoad { plugin, .. } => plugin.clone(),
            _ => None,
        };
        crate::wire::error_body(&self.to_string(), kind, param.as_deref(), Some(self.code()))
    }

    /// The whole HTTP response. This is the only place errors become responses (a limit's
    /// refusal adds its `retry-after` and `x-ratelimit-*` headers, OpenAI's error `type` for it
    /// included: see `ledger::headers`).
    pub fn into_response(self) -> Response<Body> {
        match self {
            Self::Limited(refusal) => refusal.into_response(),
            other => body::json(other.status(), &other.to_json()),
        }
    }
}

impl From<LoadError> for ProxyError {
    /// A refused (re)load or upload: 404 for a plugin name not in the config, 500 when the compile
    /// task died, 422 for everything about the plugin itself (read, signature, compile, probe,
    /// config). The message says which plugin and why.
    fn from(e: LoadError) -> Self {
        let status = match &e {
            LoadError::UnknownPlugin(_) => 404,
            LoadError::Join(_) => 500,
            _ => 422,
        };
        Self::PluginLoad { status, plugin: e.plugin().map(str::to_string), message: e.to_string() }
    }
}
