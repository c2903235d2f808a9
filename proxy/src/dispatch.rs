//! Sending a request down its chain of upstreams: per-attempt timeouts, jittered backoff, and the
//! fallback rule (connect errors, timeouts before the first byte, 429, 5xx and streams that break
//! before their first content event move on; any other answer is final).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use tokio::time::{Instant, timeout, timeout_at};

use crate::body::{self, Body};
use crate::cache::Store;
use crate::error::ProxyError;
use crate::metrics::{Metrics, UpstreamLabels};
use crate::phases::{self, WholeOutcome};
use crate::plugin::{Escalation, ResponseWatch};
use crate::request::{Endpoint, ParsedRequest};
use crate::sse;
use crate::stream_phase::StreamStop;
use crate::upstream::{ClientError, Upstream, Upstreams};

/// Largest whole response shown to watching plugins; a larger one fails the attempt.
const MAX_WATCHED_BODY: usize = 16 * 1024 * 1024;

/// How much of a failed upstream's error body is kept, to pass through if it is the last answer.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The answer that will be relayed to the client, and who gave it.
pub struct Answer {
    pub response: Response<Body>,
    /// Name of the upstream that answered.
    pub upstream: String,
}

/// One failed attempt, kept to explain the final error.
enum Failure {
    Connect(String),
    Timeout(&'static str),
    /// A 429 or 5xx, with its body so the last one can be passed through.
    Status(Box<Response<Bytes>>),
    /// A 401 or 403: the upstream refused the proxy's own credentials. Its body is never relayed
    /// (providers echo fragments of the key they were sent).
    Rejected(StatusCode),
    StreamBroken(String),
}

impl Failure {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect_error",
            Self::Timeout(_) => "timeout",
            Self::Status(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            Self::Status(_) => "server_error",
            Self::Rejected(_) => "credentials_refused",
            Self::StreamBroken(_) => "stream_broken",
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Connect(e) => e.clone(),
            Self::Timeout(phase) => format!("timed out {phase}"),
            Self::Status(r) => format!("answered {}", r.status()),
            Self::Rejected(status) => format!("refused the proxy's credentials ({status})"),
            Self::StreamBroken(e) => e.clone(),
        }
    }
}

/// What every attempt of one request shares.
pub struct Outbound<'a> {
    /// Sent upstream as `x-request-id`.
    pub request_id: &'a str,
    /// Headers plugins asked to add to the upstream request.
    pub add_headers: &'a [(HeaderName, HeaderValue)],
    pub metrics: &'a Metrics,
    /// Where a successful answer is cached, when the request is cacheable.
    pub store: Option<Store>,
    /// Caps on the upstream's answer.
    pub limits: body::ResponseLimits,
}

/// Tries each upstream of `chain` in order (with its retries) until one answers. Watching
/// plugins see the answer; one of them may escalate it once to another upstream.
#[tracing::instrument(skip_all, fields(endpoint = request.endpoint.label(), stream = request.stream()))]
pub async fn dispatch(
    chain: &[Arc<Upstream>],
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    upstreams: &Upstreams,
    watch: &mut ResponseWatch,
) -> Result<Answer, ProxyError> {
    match run_chain(chain, request, outbound, watch).await? {
        Leg::Answered(answer) => Ok(answer),
        Leg::Escalate(escalation) => {
            escalate(escalation, request, outbound, upstreams, watch).await
        }
    }
}

/// Runs `request` once more, on the upstream a watching plugin escalated to. A second escalation
/// is refused.
pub async fn escalate(
    escalation: Escalation,
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    upstreams: &Upstreams,
    watch: &mut ResponseWatch,
) -> Result<Answer, ProxyError> {
    let target = upstreams.get(&escalation.upstream).cloned().ok_or_else(|| {
        ProxyError::Internal(format!("escalation to unknown upstream {}", escalation.upstream))
    })?;
    tracing::info!(to = %target.name, reason = %escalation.reason, "a plugin escalated the request");
    outbound
        .metrics
        .escalations
        .get_or_create(&UpstreamLabels { upstream: target.name.clone() })
        .inc();
    let mut escalated = request.clone();
    if let Some(model) = &escalation.model {
        escalated.set_model(model);
    }
    match run_chain(&[target], &escalated, outbound, watch).await? {
        Leg::Answered(answer) => Ok(answer),
        Leg::Escalate(_) => Err(ProxyError::PluginRefused {
            status: 502,
            message: "a plugin escalated an already escalated request".into(),
        }),
    }
}

/// How one pass down a chain ended.
enum Leg {
    Answered(Answer),
    /// A watching plugin asked for another upstream before anything reached the client.
    Escalate(Escalation),
}

/// One attempt's result when it did not fail over.
enum Settled {
    /// Relay this (the upstream's answer, or a plugin's verdict on it).
    Respond(Response<Body>),
    Escalate(Escalation),
}

async fn run_chain(
    chain: &[Arc<Upstream>],
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    watch: &mut ResponseWatch,
) -> Result<Leg, ProxyError> {
    let metrics = outbound.metrics;
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<(String, Failure)> = None;
    let mut attempts = 0u32;
    for upstream in chain {
        if let Some(why) = &upstream.disabled {
            tried.push(format!("{} (disabled: {why})", upstream.name));
            continue;
        }
        let body = body_for(upstream, request)?;
        for _ in 0..=upstream.retries {
            if attempts > 0 {
                tokio::time::sleep(backoff(upstream.backoff, attempts)).await;
            }
            attempts += 1;
            tried.push(upstream.name.clone());
            match attempt(upstream, request, body.clone(), outbound, watch).await {
                Ok(step) => {
                    metrics.attempt(&upstream.name, "ok");
                    return Ok(match step {
                        Settled::Respond(response) => {
                            Leg::Answered(Answer { response, upstream: upstream.name.clone() })
                        }
                        Settled::Escalate(escalation) => Leg::Escalate(escalation),
                    });
                }
                Err(failure) => {
                    metrics.attempt(&upstream.name, failure.outcome());
                    tracing::warn!(upstream = %upstream.name, "attempt failed: {}", failure.describe());
                    last = Some((upstream.name.clone(), failure));
                }
            }
        }
    }
    let tried = tried.join(", ");
    match last {
        None => Err(ProxyError::NoUpstream(tried)),
        Some((name, Failure::Status(response))) => {
            Ok(Leg::Answered(Answer { response: response.map(body::full), upstream: name }))
        }
        Some((upstream, Failure::Timeout(phase))) => {
            Err(ProxyError::UpstreamTimeout { upstream, phase, tried })
        }
        Some((_, failure)) => {
            Err(ProxyError::AllUpstreamsFailed { tried, last: failure.describe() })
        }
    }
}

/// The request body for one upstream: rewritten when the upstream pins its own model.
fn body_for(upstream: &Upstream, request: &ParsedRequest) -> Result<Bytes, ProxyError> {
    match &upstream.model_override {
        Some(model) if request.model().is_some_and(|m| m != model) => {
            let mut edited = request.clone();
            edited.set_model(model);
            edited.to_bytes()
        }
        _ => request.to_bytes(),
    }
}

/// Exponential backoff with full jitter in [base·2ⁿ/2, base·2ⁿ], capped at two seconds.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(6)).min(Duration::from_secs(2));
    ceiling.mul_f64(0.5 + fastrand::f64() * 0.5)
}

async fn attempt(
    upstream: &Upstream,
    request: &ParsedRequest,
    body: Bytes,
    outbound: &Outbound<'_>,
    watch: &mut ResponseWatch,
) -> Result<Settled, Failure> {
    let metrics = outbound.metrics;
    let endpoint = request.endpoint;
    let started = Instant::now();
    let first_byte_deadline = started + upstream.timeouts.first_byte;
    let deadline = started + upstream.timeouts.total;
    let mut sent = build_request(upstream, endpoint, body, outbound.request_id)?;
    for (name, value) in outbound.add_headers {
        sent.headers_mut().append(name.clone(), value.clone());
    }
    let response = match timeout_at(first_byte_deadline, upstream.send(sent)).await {
        Err(_) => return Err(Failure::Timeout("before its first byte")),
        Ok(Err(ClientError::Connect(e) | ClientError::Request(e))) => {
            return Err(Failure::Connect(e));
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(Failure::Status(Box::new(read_error_body(response, deadline).await)));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(Failure::Rejected(status));
    }
    let (mut parts, incoming) = response.into_parts();
    relayable_headers(&mut parts.headers);
    // Bodies the proxy reads (streams, watched or cached answers) must be plain: it asked for
    // `accept-encoding: identity`, and never relays a compressed body under rewritten bytes.
    let encoded = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let reads_body = request.stream() || !watch.is_empty() || outbound.store.is_some();
    if encoded && status.is_success() && reads_body {
        let why = "the upstream compressed a body it was asked to send plain";
        return Err(Failure::StreamBroken(why.into()));
    }
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let streamed = status.is_success() && is_sse && request.stream();
    let limit = outbound.limits.max_body_bytes;
    if let Some(declared) = declared_length(&parts.headers).filter(|len| *len > limit && !streamed)
    {
        // Refused before anything is read, so the chain can still fall back.
        return Err(Failure::StreamBroken(format!(
            "its {declared}-byte body exceeds server.max_response_bytes ({limit})"
        )));
    }
    let body = if streamed {
        let recorder = cache_store(outbound, status).map(|s| s.recorder(&upstream.name));
        let events = sse::upstream_events(incoming, outbound.limits.max_event_bytes);
        let committed = match sse::commit(events, first_byte_deadline, watch, recorder).await {
            Ok(committed) => committed,
            Err(sse::CommitError::Timeout) => {
                return Err(Failure::Timeout("before its first content event"));
            }
            Err(sse::CommitError::Broken(e)) => return Err(Failure::StreamBroken(e)),
            Err(sse::CommitError::Stopped(stop)) => return Ok(stopped(stop)),
        };
        // Events are re-framed, so the upstream's length no longer applies.
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
        committed.into_body(upstream.name.clone(), deadline)
    } else if status.is_success() && (!watch.is_empty() || outbound.store.is_some()) {
        let limit = usize::try_from(outbound.limits.max_body_bytes).unwrap_or(usize::MAX);
        let whole = match read_whole(incoming, deadline, limit.min(MAX_WATCHED_BODY)).await {
            Ok(whole) => whole,
            Err(failure) => return Err(failure),
        };
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        // The upstream's own bytes are what gets cached, but only once the watching plugins let
        // the answer through (as for streams): an escalated or aborted answer is never stored.
        let to_store = cache_store(outbound, status).filter(|_| json).map(|s| (s, whole.clone()));
        let outcome = if watch.is_empty() {
            WholeOutcome::Send(whole)
        } else {
            phases::on_whole_response(watch, &upstream.name, status.as_u16(), whole).await
        };
        match outcome {
            WholeOutcome::Send(bytes) => {
                if let Some((store, original)) = to_store {
                    store.put_json(&upstream.name, original);
                }
                parts.headers.remove(header::CONTENT_LENGTH);
                body::full(bytes)
            }
            WholeOutcome::Answer(response) => return Ok(Settled::Respond(response)),
            WholeOutcome::Escalate(escalation) => return Ok(Settled::Escalate(escalation)),
        }
    } else {
        body::with_deadline(incoming, deadline, outbound.limits.max_body_bytes)
    };
    let labels = UpstreamLabels { upstream: upstream.name.clone() };
    metrics.upstream_latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    Ok(Settled::Respond(Response::from_parts(parts, body)))
}

/// The `content-length` an upstream declared, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A plugin stopped a stream before commit: answer with its error, or escalate.
fn stopped(stop: StreamStop) -> Settled {
    match stop.before_commit() {
        Ok(response) => Settled::Respond(response),
        Err(escalation) => Settled::Escalate(escalation),
    }
}

/// The cache store for this answer: only plain 200s of cacheable requests are kept.
fn cache_store<'a>(outbound: &'a Outbound<'_>, status: StatusCode) -> Option<&'a Store> {
    outbound.store.as_ref().filter(|_| status == StatusCode::OK)
}

/// Reads a whole successful body for the watching plugins, within the size and time limits.
async fn read_whole(
    incoming: hyper::body::Incoming,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, Failure> {
    let limited = Limited::new(incoming, limit);
    match timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(Failure::StreamBroken(format!("reading the response: {e}"))),
        Err(_) => Err(Failure::Timeout("while sending its response")),
    }
}

fn build_request(
    upstream: &Upstream,
    endpoint: Endpoint,
    body: Bytes,
    request_id: &str,
) -> Result<Request<Full<Bytes>>, Failure> {
    let uri = upstream
        .uri(endpoint.upstream_path())
        .map_err(|e| Failure::Connect(format!("bad upstream URL: {e}")))?;
    let mut builder = Request::builder().method(endpoint.method()).uri(uri);
    if endpoint.method() == http::Method::POST {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder
        .header("x-request-id", request_id)
        .header(header::ACCEPT_ENCODING, "identity")
        .body(Full::new(body))
        .map_err(|e| Failure::Connect(format!("building request: {e}")))
}

/// Reads a failed upstream's body (bounded) so it can be passed through if it is the last answer.
async fn read_error_body(
    response: Response<hyper::body::Incoming>,
    deadline: Instant,
) -> Response<Bytes> {
    let (mut parts, incoming) = response.into_parts();
    relayable_headers(&mut parts.headers);
    parts.headers.remove(header::CONTENT_LENGTH);
    let limited = Limited::new(incoming, MAX_ERROR_BODY);
    let bytes = match timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, bytes)
}

/// Response headers of an upstream that may reach the client. An allowlist, not a blocklist: a
/// provider's cookies, organisation and project names, its own request ids and rate-limit state
/// (of the proxy's key, not the client's) stay behind, and so does every hop-by-hop header,
/// including those a `Connection` header names.
const RELAYED_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::DATE,
];

/// Keeps only [`RELAYED_HEADERS`], less any that the `Connection` header names (RFC 9110 §7.6.1).
fn relayable_headers(headers: &mut HeaderMap) {
    let per_hop: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let kept: Vec<(HeaderName, HeaderValue)> = RELAYED_HEADERS
        .iter()
        .filter(|name| !per_hop.iter().any(|hop| hop == name.as_str()))
        .flat_map(|name| headers.get_all(name).iter().map(|v| (name.clone(), v.clone())))
        .collect();
    headers.clear();
    for (name, value) in kept {
        headers.append(name, value);
    }
}

/// Fetches a GET endpoint from one upstream with its first-byte timeout; used by `/v1/models`.
pub async fn fetch_json(
    upstream: &Upstream,
    endpoint: Endpoint,
) -> Result<serde_json::Value, String> {
    let request =
        build_request(upstream, endpoint, Bytes::new(), "models").map_err(|f| f.describe())?;
    let limit = upstream.timeouts.first_byte.max(Duration::from_millis(1));
    let response = timeout(limit, upstream.send(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let body = timeout(limit, Limited::new(response.into_body(), 4 * 1024 * 1024).collect())
        .await
        .map_err(|_| "timed out reading the body".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_reach_the_client() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("set-cookie", "__cf_bm=abc"),
            ("openai-organization", "acme-internal"),
            ("x-ratelimit-remaining-tokens", "12"),
            ("retry-after", "3"),
            ("connection", "keep-alive, Cache-Control"),
            ("cache-control", "private"),
            ("keep-alive", "timeout=5"),
        ] {
            headers.append(name, value.parse().unwrap());
        }
        relayable_headers(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "retry-after"]);
    }
}
