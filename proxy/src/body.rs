//! Bodies: the response body type every handler returns and constructors for the common shapes,
//! reading a request body within its limits and the global body budget, and relaying an upstream
//! body within its deadline and size cap.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;
use crate::trail::Trail;

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
/// With a `trail`, the body's last [`TAIL_BYTES`] are kept and read for a usage report once it
/// has ended (OpenAI-shaped answers put `usage` last), so an answer relayed without being read
/// whole is still counted.
pub fn with_deadline(
    body: hyper::body::Incoming,
    deadline: tokio::time::Instant,
    limit: u64,
    trail: Option<Arc<Trail>>,
) -> Body {
    use http_body_util::StreamBody;
    struct Relay {
        body: hyper::body::Incoming,
        seen: u64,
        tail: Option<(Arc<Trail>, Vec<u8>)>,
    }
    let relay = Relay { body, seen: 0, tail: trail.map(|t| (t, Vec::new())) };
    let frames = futures_util::stream::unfold(Some(relay), move |state| async move {
        let mut relay = state?;
        match tokio::time::timeout_at(deadline, relay.body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let data = frame.data_ref();
                relay.seen += data.map_or(0, |d| d.len() as u64);
                if relay.seen > limit {
                    let error =
                        format!("upstream body exceeded {limit} bytes (server.max_response_bytes)");
                    return Some((Err(BoxError::from(error)), None));
                }
                if let (Some((_, tail)), Some(data)) = (relay.tail.as_mut(), data) {
                    keep_tail(tail, data);
                }
                // With a `content-length`, hyper knows the body ended with this frame, and the
                // client side may stop polling before the stream says so.
                if http_body::Body::is_end_stream(&relay.body)
                    && let Some((trail, tail)) = relay.tail.take()
                {
                    trail.answer_tail(&tail);
                }
                Some((Ok(frame), Some(relay)))
            }
            Ok(Some(Err(e))) => Some((Err(BoxError::from(e)), None)),
            Ok(None) => {
                if let Some((trail, tail)) = relay.tail {
                    trail.answer_tail(&tail);
                }
                None
            }
            Err(_) => Some((Err(BoxError::from("upstream body exceeded its total timeout")), None)),
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

/// How much of the end of a relayed answer is kept for its usage report.
pub const TAIL_BYTES: usize = 4096;

/// Appends `data` to `tail`, keeping only the last [`TAIL_BYTES`].
fn keep_tail(tail: &mut Vec<u8>, data: &[u8]) {
    let data = &data[data.len().saturating_sub(TAIL_BYTES)..];
    let overflow = (tail.len() + data.len()).saturating_sub(TAIL_BYTES);
    tail.drain(..overflow.min(tail.len()));
    tail.extend_from_slice(data);
}

/// How a response body ended, as [`on_end`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every byte was sent.
    Complete,
    /// The body failed (an upstream broke it); the client saw it cut short.
    Failed,
    /// The client went away (or the connection was closed) before the end.
    Abandoned,
}

/// `body`, calling `done` exactly once when it ends, however it ends: its last frame sent, an
/// error, or dropped unfinished because the client went away. `length` is the response's
/// `content-length`, if it has one: a body dropped once that many bytes went out was sent whole
/// (hyper stops polling at the length).
pub fn on_end(body: Body, length: Option<u64>, done: impl FnOnce(Ended) + Send + 'static) -> Body {
    OnEnd { body, length, sent: 0, done: Some(Box::new(done)) }.boxed_unsync()
}

struct OnEnd {
    body: Body,
    length: Option<u64>,
    sent: u64,
    done: Option<Box<dyn FnOnce(Ended) + Send>>,
}

impl OnEnd {
    fn finish(&mut self, how: Ended) {
        if let Some(done) = self.done.take() {
            done(how);
        }
    }
}

impl http_body::Body for OnEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(None) => this.finish(Ended::Complete),
            std::task::Poll::Ready(Some(Err(_))) => this.finish(Ended::Failed),
            std::task::Poll::Ready(Some(Ok(frame))) => {
                this.sent += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            std::task::Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.body)
    }
}

impl Drop for OnEnd {
    fn drop(&mut self) {
        // A body hyper dropped after its end (`is_end_stream` said so, or its length went out)
        // was sent whole.
        let whole = http_body::Body::is_end_stream(&self.body) || self.length == Some(self.sent);
        let how = if whole { Ended::Complete } else { Ended::Abandoned };
        self.finish(how);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_across_frames() {
        let mut tail = Vec::new();
        keep_tail(&mut tail, &[1u8; 3000]);
        keep_tail(&mut tail, &[2u8; 3000]);
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail[..TAIL_BYTES - 3000].iter().all(|b| *b == 1));
        assert!(tail[TAIL_BYTES - 3000..].iter().all(|b| *b == 2));
        keep_tail(&mut tail, &[3u8; 5000]);
        assert!(tail.iter().all(|b| *b == 3));
    }

    #[tokio::test]
    async fn on_end_reports_how_a_body_ended_once() {
        use std::sync::Mutex;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = |seen: &Arc<Mutex<Vec<Ended>>>| {
            let seen = Arc::clone(seen);
            move |how| seen.lock().unwrap().push(how)
        };
        let whole = on_end(full("abc"), None, log(&seen));
        assert_eq!(whole.collect().await.unwrap().to_bytes(), "abc");
        drop(on_end(full("never read"), None, log(&seen)));
        // A streamed body whose declared length went out, dropped before it said it ended.
        let frames = futures_util::stream::iter([Ok(http_body::Frame::data(Bytes::from("ab")))]);
        let streamed = http_body_util::StreamBody::new(frames).boxed_unsync();
        let mut sized = on_end(streamed, Some(2), log(&seen));
        assert!(sized.frame().await.unwrap().is_ok());
        drop(sized);
        let failing = futures_util::stream::iter([
            Ok(http_body::Frame::data(Bytes::from("a"))),
            Err(BoxError::from("broke")),
        ]);
        let failing = http_body_util::StreamBody::new(failing).boxed_unsync();
        assert!(on_end(failing, None, log(&seen)).collect().await.is_err());
        let expected = [Ended::Complete, Ended::Abandoned, Ended::Complete, Ended::Failed];
        assert_eq!(*seen.lock().unwrap(), expected);
    }
}
