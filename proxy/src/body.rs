//! Bodies: the response body type every handler returns and constructors for the common shapes,
//! reading a request body within its limits and the global body budget, and relaying an upstream
//! body within its deadline and size cap.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;

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

/// What an upstream's answer may take, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ResponseLimits {
    /// Largest single SSE event or line (`server.max_sse_event_bytes`).
    pub max_event_bytes: usize,
    /// Largest body that is not a stream (`server.max_response_bytes`).
    pub max_body_bytes: u64,
}

/// Relays an upstream body as it arrives, failing it if it is not complete by `deadline` or
/// passes `limit` bytes (the client then sees the body cut short, as with a broken upstream).
pub fn with_deadline(
    body: hyper::body::Incoming,
    deadline: tokio::time::Instant,
    limit: u64,
) -> Body {
    use http_body_util::StreamBody;
    let frames = futures_util::stream::unfold(Some((body, 0u64)), move |state| async move {
        let (mut body, seen) = state?;
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let seen = seen + frame.data_ref().map_or(0, |d| d.len() as u64);
                if seen > limit {
                    let error =
                        format!("upstream body exceeded {limit} bytes (server.max_response_bytes)");
                    return Some((Err(BoxError::from(error)), None));
                }
                Some((Ok(frame), Some((body, seen))))
            }
            Ok(Some(Err(e))) => Some((Err(BoxError::from(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(BoxError::from("upstream body exceeded its total timeout")), None)),
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

/// The request-body bytes the proxy may hold at once across all connections and HTTP/2 streams
/// (`server.max_buffered_body_bytes`). Each body reserves what it buffers and gives it back when
/// the request is done, so many large bodies at once cannot grow the process without bound.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

/// Bytes of the budget held by one request body; returned on drop.
#[derive(Debug)]
pub struct Reserved(Option<OwnedSemaphorePermit>);

impl BodyBudget {
    pub fn new(bytes: u64) -> Self {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Self { bytes: Arc::new(Semaphore::new(bytes)) }
    }

    /// Bytes not reserved by any body right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Adds `bytes` to `held`, or fails when the budget has no room for them.
    fn reserve(&self, held: &mut Reserved, bytes: usize) -> Result<(), ProxyError> {
        let Ok(bytes) = u32::try_from(bytes) else {
            return Err(overloaded());
        };
        if bytes == 0 {
            return Ok(());
        }
        let permit =
            Arc::clone(&self.bytes).try_acquire_many_owned(bytes).map_err(|_| overloaded())?;
        match &mut held.0 {
            Some(held) => held.merge(permit),
            None => held.0 = Some(permit),
        }
        Ok(())
    }
}

fn overloaded() -> ProxyError {
    ProxyError::Overloaded(
        "the proxy is holding as many request bodies as it may (server.max_buffered_body_bytes); \
         retry shortly"
            .into(),
    )
}

/// Reads a whole request body within `limit` bytes (checked against `content-length` first, then
/// while reading), `timeout`, and the shared `budget` (`None`: unmetered, for the token-protected
/// admin upload): the body's bytes stay reserved until the returned [`Reserved`] is dropped. A
/// declared length is reserved before anything is read.
pub async fn read_limited(
    request: http::Request<hyper::body::Incoming>,
    limit: u64,
    budget: Option<&BodyBudget>,
    timeout: std::time::Duration,
) -> Result<(Bytes, Reserved), ProxyError> {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let mut held = Reserved(None);
    let declared = declared.and_then(|len| usize::try_from(len).ok()).unwrap_or(0);
    let reserve = |held: &mut Reserved, bytes| budget.map_or(Ok(()), |b| b.reserve(held, bytes));
    reserve(&mut held, declared)?;
    // One buffer of the declared size: chunks are copied in and freed as they arrive, so the body
    // is held once, not as its chunks plus a contiguous copy.
    let mut buf = BytesMut::with_capacity(declared);
    let mut body = request.into_body();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ProxyError::BodyRead(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            if (buf.len() + data.len()) as u64 > limit {
                return Err(ProxyError::PayloadTooLarge { limit });
            }
            let beyond_declared = (buf.len() + data.len()).saturating_sub(declared.max(buf.len()));
            reserve(&mut held, beyond_declared)?;
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(ProxyError::BodyTimeout(timeout.as_millis() as u64)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok((buf.freeze(), held)),
    }
}
