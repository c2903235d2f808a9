//! The response body type every handler returns, and constructors for the common shapes.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Errors a body can end with; boxed because they come from hyper, timeouts and our own relays.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming response body. Not `Sync`, so that relays can hold plain futures.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body that is already complete.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

/// A JSON response with the given status.
pub fn json(status: http::StatusCode, value: &serde_json::Value) -> http::Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut response = http::Response::new(full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// Relays an upstream body as it arrives, failing it if it is not complete by `deadline`.
pub fn with_deadline(body: hyper::body::Incoming, deadline: tokio::time::Instant) -> Body {
    use http_body_util::StreamBody;
    let frames = futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => Some((Ok(frame), Some(body))),
            Ok(Some(Err(e))) => Some((Err(BoxError::from(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BoxError::from("upstream body exceeded its total timeout")), None)),
        }
    });
    StreamBody::new(frames).boxed_unsync()
}
