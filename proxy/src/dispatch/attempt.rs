//! One attempt on one upstream: send, decide from the status whether the chain moves on, then
//! handle the body in one of three modes. A stream is committed through the responder; a whole
//! body is read (for the watchers and the cache) and handed to it; anything else is passed
//! through as it arrives. A failure gives the responder back with it, for the next attempt.

use std::sync::Arc;

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::time::{Instant, timeout_at};

use super::outgoing::{build_request, read_error_body, relayable_headers};
use super::{Failure, Outbound};
use crate::body;
use crate::metrics::Metrics;
use crate::request::ParsedRequest;
use crate::respond::{Delivery, Responder, StreamFailure, Uncommitted};
use crate::upstream::{ClientError, Upstream};
use crate::wire;

/// Largest whole response shown to watching plugins; a larger one fails the attempt.
const MAX_WATCHED_BODY: usize = 16 * 1024 * 1024;

/// What the proxy does with a successful answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    /// An event stream the client asked for: committed, then relayed event by event.
    Stream,
    /// Read whole first: plugins watch it, or the cache may keep it.
    Whole,
    /// Relayed as it arrives, within the deadline and size cap.
    Pass,
}

/// The two deadlines of one attempt.
#[derive(Clone, Copy)]
struct Deadlines {
    /// For the first byte, and for a stream's first content event.
    first_byte: Instant,
    /// For the whole answer.
    total: Instant,
}

/// One attempt; `Err` carries the failure and the responder back.
pub(super) async fn attempt(
    upstream: &Upstream,
    request: &ParsedRequest,
    body: Bytes,
    outbound: &Outbound<'_>,
    responder: Responder,
    span: [u8; 8],
) -> Result<Delivery, (Failure, Responder)> {
    let started = Instant::now();
    let deadlines = Deadlines {
        first_byte: started + upstream.timeouts.first_byte,
        total: started + upstream.timeouts.total,
    };
    let answer = answered(upstream, request, body, outbound, &responder, deadlines, span).await;
    let (parts, incoming, mode) = match answer {
        Ok(answer) => answer,
        Err(failure) => return Err((failure, responder)),
    };
    let delivery = match mode {
        BodyMode::Stream => {
            Box::pin(stream(upstream, parts, incoming, outbound, responder, deadlines)).await?
        }
        BodyMode::Whole => {
            Box::pin(whole(upstream, parts, incoming, outbound, responder, deadlines)).await?
        }
        BodyMode::Pass => {
            let (limit, trail) = (outbound.limits.max_body_bytes, Arc::clone(responder.trail()));
            let body = body::with_deadline(incoming, deadlines.total, limit, Some(trail));
            responder.pass(parts, body)
        }
    };
    let latency = started.elapsed().as_secs_f64();
    Metrics::observe(&outbound.metrics.upstream_latency, &upstream.name, latency);
    Ok(delivery)
}

/// Sends the request and judges the answer's head: a status the chain moves on from is a
/// failure; otherwise the relayable head, the body, and its mode.
async fn answered(
    upstream: &Upstream,
    request: &ParsedRequest,
    body: Bytes,
    outbound: &Outbound<'_>,
    responder: &Responder,
    deadlines: Deadlines,
    span: [u8; 8],
) -> Result<(Parts, Incoming, BodyMode), Failure> {
    let mut sent = build_request(upstream, request.endpoint, body, outbound.request_id)?;
    for (name, value) in outbound.add_headers {
        sent.headers_mut().append(name.clone(), value.clone());
    }
    // The trace goes on upstream, with this attempt's span as the parent.
    if let Some((parent, state)) = outbound.trail.propagation(span) {
        let headers = sent.headers_mut();
        if let Ok(value) = http::HeaderValue::try_from(parent) {
            headers.insert("traceparent", value);
        }
        if !state.is_empty()
            && let Ok(value) = http::HeaderValue::try_from(state)
        {
            headers.insert("tracestate", value);
        }
    }
    let response = match timeout_at(deadlines.first_byte, upstream.send(sent)).await {
        Err(_) => return Err(Failure::Timeout("before its first byte")),
        Ok(Err(ClientError::Connect(e) | ClientError::Request(e))) => {
            return Err(Failure::Connect(e));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(Failure::Status(Box::new(read_error_body(response, deadlines.total).await)));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(Failure::Rejected(status));
    }
    let (mut parts, incoming) = response.into_parts();
    relayable_headers(&mut parts.headers);
    let mode = body_mode(&parts, request.stream(), responder);
    // Bodies the proxy reads (streams, watched or cached answers) must be plain: it asked for
    // `accept-encoding: identity`, and never relays a compressed body under rewritten bytes.
    let encoded = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let reads_body = request.stream() || responder.reads_whole();
    if encoded && status.is_success() && reads_body {
        let why = "the upstream compressed a body it was asked to send plain";
        return Err(Failure::StreamBroken(why.into()));
    }
    let limit = outbound.limits.max_body_bytes;
    let declared = declared_length(&parts.headers).filter(|len| *len > limit);
    if let Some(declared) = declared.filter(|_| mode != BodyMode::Stream) {
        // Refused before anything is read, so the chain can still fall back.
        return Err(Failure::StreamBroken(format!(
            "its {declared}-byte body exceeds server.max_response_bytes ({limit})"
        )));
    }
    Ok((parts, incoming, mode))
}

/// Streams only when the client asked for one and the upstream answered one successfully; other
/// successful answers are read whole when someone needs them whole.
fn body_mode(parts: &Parts, client_streams: bool, responder: &Responder) -> BodyMode {
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    match parts.status.is_success() {
        true if is_sse && client_streams => BodyMode::Stream,
        true if responder.reads_whole() => BodyMode::Whole,
        _ => BodyMode::Pass,
    }
}

async fn stream(
    upstream: &Upstream,
    parts: Parts,
    incoming: Incoming,
    outbound: &Outbound<'_>,
    responder: Responder,
    deadlines: Deadlines,
) -> Result<Delivery, (Failure, Responder)> {
    let events = wire::upstream_events(incoming, outbound.limits.max_event_bytes);
    let (first_byte, total) = (deadlines.first_byte, deadlines.total);
    match responder.stream(&upstream.name, parts, events, first_byte, total).await {
        Ok(delivery) => Ok(delivery),
        Err(Uncommitted { error, responder }) => {
            let failure = match error {
                StreamFailure::Timeout => Failure::Timeout("before its first content event"),
                StreamFailure::Broken(why) => Failure::StreamBroken(why),
            };
            Err((failure, responder))
        }
    }
}

async fn whole(
    upstream: &Upstream,
    parts: Parts,
    incoming: Incoming,
    outbound: &Outbound<'_>,
    responder: Responder,
    deadlines: Deadlines,
) -> Result<Delivery, (Failure, Responder)> {
    let limit = usize::try_from(outbound.limits.max_body_bytes).unwrap_or(usize::MAX);
    match read_whole(incoming, deadlines.total, limit.min(MAX_WATCHED_BODY)).await {
        Ok(bytes) => Ok(responder.whole(&upstream.name, parts, bytes).await),
        Err(failure) => Err((failure, responder)),
    }
}

/// The `content-length` an upstream declared, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// Reads a whole successful body, within the size and time limits.
async fn read_whole(incoming: Incoming, deadline: Instant, limit: usize) -> Result<Bytes, Failure> {
    let limited = Limited::new(incoming, limit);
    match timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(Failure::StreamBroken(format!("reading the response: {e}"))),
        Err(_) => Err(Failure::Timeout("while sending its response")),
    }
}
