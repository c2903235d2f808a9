//! Errors: the crate's own [`Error`], and [`ApiError`], the one place where a failure becomes an
//! HTTP response in OpenAI's error shape.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::http::Body;

/// Why the service could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("loading the model failed: {0}")]
    Load(String),
    #[error("accepting connections failed: {0}")]
    Accept(#[from] std::io::Error),
}

/// A failed request, answered as `{"error":{"message","type","code","param"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status; 4xx says the client failed, 5xx that this service did.
    pub status: StatusCode,
    /// Human-readable reason; never contains prompt text.
    pub message: String,
    /// OpenAI's `type`, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// OpenAI's machine-readable `code`.
    pub code: &'static str,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    /// Seconds a client should wait before retrying (429 and 503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, msg: String) -> Self {
        Self { status, message: msg, kind, code, param: None, retry_after: None }
    }

    /// The request is malformed or asks for something this service does not do.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message.into())
    }

    /// A parameter this service does not implement: named, never silently ignored.
    pub fn unsupported_param(name: &str) -> Self {
        let mut e = Self::invalid(
            "unsupported_parameter",
            format!("Unsupported parameter: '{name}' is not supported by switchyard-inference."),
        );
        e.param = Some(name.to_owned());
        e
    }

    /// The bounded queue is full.
    pub fn queue_full(depth: u32) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "queue_full",
            format!("All slots are busy and the queue of {depth} requests is full; retry later."),
        );
        e.retry_after = Some(1);
        e
    }

    /// The model is still loading (or the engine stopped).
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unavailable",
            message.into(),
        );
        e.retry_after = Some(1);
        e
    }

    /// This service failed while answering.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message.into(),
        )
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("No route {path}"),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            "Method not allowed".to_owned(),
        )
    }

    /// The JSON body, also used as an SSE `error` event when a stream fails after it started.
    pub fn body_json(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "param": self.param,
        }})
    }

    pub fn into_response(self) -> Response<Body> {
        let bytes = Bytes::from(self.body_json().to_string());
        let mut resp = Response::new(crate::http::full(bytes));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
