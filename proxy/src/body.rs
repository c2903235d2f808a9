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

/// Reads a whole request body within `limit` bytes (checked against `content-length` first, then
/// while reading) and `timeout`.
pub async fn read_limited(
    request: http::Request<hyper::body::Incoming>,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, crate::error::ProxyError> {
    use crate::error::ProxyError;
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let limited = http_body_util::Limited::new(
        request.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    );
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ProxyError::BodyTimeout(timeout.as_millis() as u64)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::PayloadTooLarge { limit })
        }
        Ok(Err(e)) => Err(ProxyError::BodyRead(e.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
