//! The response phase's one owner. A [`Responder`] is made once per request, after the request
//! phase: it holds the plugins that watch the answer and the cache entry the answer may fill.
//! Whatever answers the request consumes it: an upstream's whole body ([`Responder::whole`]), an
//! upstream's event stream ([`Responder::stream`]) or a cache hit ([`Responder::hit`]). What it
//! hands back is either the response for the client or, when the answer could not be used, the
//! responder itself for the next attempt, so plugins and cache entry are never lent out and
//! put back.
//!
//! - [`whole`]: a whole answer shown to the watchers, their edits written back.
//! - [`stream`]: stream chunks through the watchers.
//! - [`relay`]: holding a stream until its first content event, then relaying it.
//! - [`hit`]: a stored answer in the client's format, through the watchers again.

mod hit;
mod relay;
mod stream;
mod whole;

use std::sync::Arc;

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::cache::{Cached, Store};
use crate::plugin::{Escalation, ResponseWatch};
use crate::trail::Trail;
use crate::wire::Events;

use relay::CommitError;
pub use stream::{StreamStop, TOOL_CALL_CHOICE};
pub use whole::WholeOutcome;

/// The response phase of one request; see the module documentation.
pub struct Responder {
    /// The plugins that watch the answer (empty for most requests).
    watch: ResponseWatch,
    /// Where a fresh answer is stored, when the request is cacheable.
    store: Option<Store>,
    /// The client asked for a stream.
    stream: bool,
    /// Where the answer's usage is noted.
    trail: Arc<Trail>,
    /// The client asked for a stream's usage chunk (the upstream is always asked for one).
    send_usage: bool,
}

/// What a responder made of an answer.
pub enum Delivery {
    /// Send this to the client.
    Send(Response<Body>),
    /// A watching plugin asked for another upstream before anything reached the client. The
    /// responder comes back for the escalated attempt.
    Escalate(Escalation, Responder),
}

/// A stream that failed before anything reached the client, so the chain can fall back: why,
/// and the responder for the next attempt.
pub struct Uncommitted {
    pub error: StreamFailure,
    pub responder: Responder,
}

/// Why a stream could not be committed; both are reasons to try the next upstream.
#[derive(Debug)]
pub enum StreamFailure {
    /// No content event before the first-byte deadline.
    Timeout,
    /// The stream ended, broke, or carried an error event before any content.
    Broken(String),
}

impl Responder {
    /// The response phase for a request: `watch` from the request phase, `store` from the
    /// cache plan, `stream` and `send_usage` as the client asked (`stream_options.include_usage`).
    pub fn new(
        watch: ResponseWatch,
        store: Option<Store>,
        stream: bool,
        trail: Arc<Trail>,
        send_usage: bool,
    ) -> Self {
        Self { watch, store, stream, trail, send_usage }
    }

    /// The request's trail, where a passed-through answer's usage is noted too.
    pub fn trail(&self) -> &Arc<Trail> {
        &self.trail
    }

    /// Whether a successful non-streamed answer must be read whole before it is sent: a plugin
    /// watches it, or the cache may keep it.
    pub fn reads_whole(&self) -> bool {
        !self.watch.is_empty() || self.store.is_some()
    }

    /// An answer the proxy relays without reading (an error status, or nothing watches or caches
    /// it): the responder has nothing to do.
    pub fn pass(self, parts: Parts, body: Body) -> Delivery {
        Delivery::Send(Response::from_parts(parts, body))
    }

    /// A whole successful answer from `upstream`: shown to the watchers, then cached as the
    /// upstream sent it (a plain 200 with a JSON body only, and only once the watchers let it
    /// through: an escalated or aborted answer is never stored).
    pub async fn whole(mut self, upstream: &str, mut parts: Parts, body: Bytes) -> Delivery {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let cacheable = json && parts.status == StatusCode::OK;
        let original = self.store.is_some().then(|| body.clone()).filter(|_| cacheable);
        let status = parts.status.as_u16();
        self.trail.answer(&body);
        let bytes = match whole::watch(&mut self.watch, upstream, status, body).await {
            WholeOutcome::Send(bytes) => bytes,
            WholeOutcome::Respond(response) => return Delivery::Send(response),
            WholeOutcome::Escalate(escalation) => return Delivery::Escalate(escalation, self),
        };
        if let (Some(store), Some(original)) = (&self.store, original) {
            store.put_json(upstream, original);
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        Delivery::Send(Response::from_parts(parts, body::full(bytes)))
    }

    /// An upstream's successful event stream: held until its first content event (within
    /// `first_byte`), then relayed through the watchers until `deadline`, and recorded for the
    /// cache when it ends cleanly.
    pub async fn stream(
        self,
        upstream: &str,
        mut parts: Parts,
        events: Events,
        first_byte: Instant,
        deadline: Instant,
    ) -> Result<Delivery, Uncommitted> {
        let recorder = (parts.status == StatusCode::OK)
            .then(|| self.store.as_ref().map(|s| s.recorder(upstream)))
            .flatten();
        let body = self.relay(upstream, events, first_byte, deadline, recorder).await?;
        let body = match body {
            Ok(body) => body,
            Err(delivery) => return Ok(delivery),
        };
        // Events are re-framed, so the upstream's length no longer applies.
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(Delivery::Send(Response::from_parts(parts, body)))
    }

    /// Commits `events` and returns the client's body; a plugin's stop before commit is the
    /// delivery instead.
    async fn relay(
        self,
        upstream: &str,
        events: Events,
        first_byte: Instant,
        deadline: Instant,
        recorder: Option<crate::cache::Recorder>,
    ) -> Result<Result<Body, Delivery>, Uncommitted> {
        let Self { watch, store, stream, trail, send_usage } = self;
        let phase = stream::StreamPhase::new(watch);
        let taps = relay::Taps { recorder, trail: Arc::clone(&trail), send_usage };
        match relay::commit(events, first_byte, phase, taps).await {
            Ok(committed) => {
                trail.mark("stream.commit", vec![("upstream", upstream.to_string())]);
                Ok(Ok(committed.into_body(upstream.to_string(), deadline)))
            }
            Err((error, phase)) => {
                let watch = phase.map(stream::StreamPhase::into_watch).unwrap_or_default();
                let responder = Self { watch, store, stream, trail, send_usage };
                let error = match error {
                    CommitError::Stopped(stop) => return Ok(Err(responder.stopped(stop))),
                    CommitError::Timeout => StreamFailure::Timeout,
                    CommitError::Broken(why) => StreamFailure::Broken(why),
                };
                Err(Uncommitted { error, responder })
            }
        }
    }

    /// A plugin stopped a stream before commit: answer with its error, or escalate.
    fn stopped(self, stop: StreamStop) -> Delivery {
        match stop.before_commit() {
            Ok(response) => Delivery::Send(response),
            Err(escalation) => Delivery::Escalate(escalation, self),
        }
    }

    /// A cache hit, in the client's format and through the watchers. `Err` gives the responder
    /// back when the entry cannot be shown that way (treat as a miss). An escalated hit is
    /// removed from the cache (the shared level too), so the escalated answer replaces it.
    pub async fn hit(self, entry: &Cached) -> Result<Delivery, Self> {
        let delivery = hit::serve(self, entry).await?;
        if let Delivery::Escalate(_, responder) = &delivery
            && let Some(store) = &responder.store
        {
            store.cache.remove(&store.key, entry);
        }
        Ok(delivery)
    }
}
