//! Serving a cache hit: the stored answer in the client's format (a stored stream as one JSON body
//! for a non-streaming client, a stored JSON body as SSE for a streaming one), run through the
//! watching plugins again exactly like a fresh answer, so placeholders are restored with the
//! current request's values.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};
use tokio::time::Instant;

use super::{Delivery, Responder, Uncommitted};
use crate::body;
use crate::cache::{Cached, CachedBody};
use crate::wire::{self, chunks};

/// A replayed stream gets this long to be read by the client.
const REPLAY_DEADLINE: Duration = Duration::from_secs(300);

/// Serves `entry` through `responder`; `Err` gives it back when the entry cannot be shown in the
/// client's format (e.g. streamed tool calls to a non-streaming client).
pub async fn serve(mut responder: Responder, entry: &Cached) -> Result<Delivery, Responder> {
    let upstream = entry.upstream.as_str();
    if responder.stream {
        let events = match &entry.body {
            CachedBody::Events(events) => Some(events.clone()),
            CachedBody::Json(json) => chunks::completion_to_chunks(json),
        };
        let Some(events) = events else { return Err(responder) };
        let far = Instant::now() + REPLAY_DEADLINE;
        let body = match responder.relay(upstream, wire::replayed(events), far, far, None).await {
            Ok(Ok(body)) => body,
            Ok(Err(delivery)) => return Ok(delivery),
            Err(Uncommitted { responder, .. }) => return Err(responder),
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(Delivery::Send(response))
    } else {
        let json = match &entry.body {
            CachedBody::Json(json) => Some(json.clone()),
            CachedBody::Events(events) => chunks::chunks_to_completion(events),
        };
        let Some(json) = json else { return Err(responder) };
        let bytes = match super::whole::watch(&mut responder.watch, upstream, 200, json).await {
            super::WholeOutcome::Send(bytes) => bytes,
            super::WholeOutcome::Respond(response) => return Ok(Delivery::Send(response)),
            super::WholeOutcome::Escalate(escalation) => {
                return Ok(Delivery::Escalate(escalation, responder));
            }
        };
        let mut response = Response::new(body::full(bytes));
        *response.status_mut() = StatusCode::OK;
        let json = HeaderValue::from_static("application/json");
        response.headers_mut().insert(header::CONTENT_TYPE, json);
        Ok(Delivery::Send(response))
    }
}
