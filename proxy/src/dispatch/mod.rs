//! Answering a request: from a cache hit ([`from_cache`]), or down its chain of upstreams with
//! per-attempt timeouts, jittered backoff, and the fallback rule (connect errors, timeouts before
//! the first byte, 429, 5xx and streams that break before their first content event move on; any
//! other answer is final). The request's [`Responder`] goes along and
//! is consumed by whichever answer is used.
//!
//! - [`attempt`]: one attempt on one upstream, split by body mode (stream, whole, passed through).
//! - [`outgoing`]: the upstream request, and which of its response headers reach the client.

mod attempt;
mod outgoing;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};
use crate::cache::Cached;
use crate::error::ProxyError;
use crate::metrics::{Metrics, UpstreamLabels};
use crate::plugin::Escalation;
use crate::request::ParsedRequest;
use crate::respond::{Delivery, Responder};
use crate::trail::Trail;
use crate::upstream::{Upstream, Upstreams};

pub use outgoing::fetch_json;

/// The response for the client, and who gave it.
pub struct Served {
    pub response: Response<Body>,
    /// Name of the upstream that answered (for a hit: the one that answered when it was stored).
    pub upstream: String,
    /// The answer came from the cache.
    pub from_cache: bool,
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
    /// Caps on the upstream's answer.
    pub limits: body::ResponseLimits,
    pub upstreams: &'a Upstreams,
    /// Where each attempt is noted.
    pub trail: &'a Trail,
}

/// What a cache hit became.
pub enum FromCache {
    Served(Served),
    /// A watching plugin rejected the stored answer and asked for another upstream.
    Escalate(Escalation, Responder),
    /// The entry cannot be shown to this client; the responder goes on to the upstreams.
    Unusable(Responder),
}

/// Answers from a cached entry, through the watching plugins.
pub async fn from_cache(entry: &Cached, responder: Responder) -> FromCache {
    match responder.hit(entry).await {
        Ok(Delivery::Send(response)) => {
            let upstream = entry.upstream.clone();
            FromCache::Served(Served { response, upstream, from_cache: true })
        }
        Ok(Delivery::Escalate(escalation, responder)) => FromCache::Escalate(escalation, responder),
        Err(responder) => FromCache::Unusable(responder),
    }
}

/// Tries each upstream of `chain` in order (with its retries) until one answers. Watching plugins
/// see the answer; one of them may escalate it once to another upstream.
#[tracing::instrument(skip_all, fields(endpoint = request.endpoint.label(), stream = request.stream()))]
pub async fn dispatch(
    chain: &[Arc<Upstream>],
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    responder: Responder,
) -> Result<Served, ProxyError> {
    match run_chain(chain, request, outbound, responder).await? {
        Leg::Served(served) => Ok(served),
        Leg::Escalate(escalation, responder) => {
            Box::pin(escalate(escalation, request, outbound, responder)).await
        }
    }
}

/// Runs `request` once more, on the upstream a watching plugin escalated to. A second escalation
/// is refused.
pub async fn escalate(
    escalation: Escalation,
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    responder: Responder,
) -> Result<Served, ProxyError> {
    let target = outbound.upstreams.get(&escalation.upstream).cloned().ok_or_else(|| {
        ProxyError::Internal(format!("escalation to unknown upstream {}", escalation.upstream))
    })?;
    tracing::info!(to = %target.name, reason = %escalation.reason, "a plugin escalated the request");
    let detail = vec![("to", target.name.clone()), ("reason", escalation.reason.clone())];
    outbound.trail.mark("escalation", detail);
    outbound
        .metrics
        .escalations
        .get_or_create(&UpstreamLabels { upstream: target.name.clone() })
        .inc();
    let mut escalated = request.clone();
    if let Some(model) = &escalation.model {
        escalated.set_model(model);
    }
    match run_chain(&[target], &escalated, outbound, responder).await? {
        Leg::Served(served) => Ok(served),
        Leg::Escalate(..) => Err(ProxyError::PluginRefused {
            status: 502,
            message: "a plugin escalated an already escalated request".into(),
        }),
    }
}

/// How one pass down a chain ended.
enum Leg {
    Served(Served),
    /// A watching plugin asked for another upstream before anything reached the client.
    Escalate(Escalation, Responder),
}

async fn run_chain(
    chain: &[Arc<Upstream>],
    request: &ParsedRequest,
    outbound: &Outbound<'_>,
    mut responder: Responder,
) -> Result<Leg, ProxyError> {
    let metrics = outbound.metrics;
    let mut tried: Vec<String> = Vec::new();
    let mut last: Option<(String, Failure)> = None;
    let mut attempts = 0u32;
    for upstream in chain {
        if let Some(why) = &upstream.disabled {
            tried.push(format!("{} (disabled: {why})", upstream.name));
            let now = tokio::time::Instant::now();
            let span = crate::telemetry::span_id();
            outbound.trail.attempt(&upstream.name, "disabled", now, Duration::ZERO, span);
            continue;
        }
        let body = body_for(upstream, request)?;
        for _ in 0..=upstream.retries {
            if attempts > 0 {
                tokio::time::sleep(backoff(upstream.backoff, attempts)).await;
            }
            attempts += 1;
            tried.push(upstream.name.clone());
            let started = tokio::time::Instant::now();
            let span = crate::telemetry::span_id();
            let result =
                attempt::attempt(upstream, request, body.clone(), outbound, responder, span).await;
            let outcome = result.as_ref().map_or_else(|(failure, _)| failure.outcome(), |_| "ok");
            outbound.trail.attempt(&upstream.name, outcome, started, started.elapsed(), span);
            metrics.attempt(&upstream.name, outcome);
            match result {
                Ok(delivery) => {
                    return Ok(match delivery {
                        Delivery::Send(response) => Leg::Served(Served {
                            response,
                            upstream: upstream.name.clone(),
                            from_cache: false,
                        }),
                        Delivery::Escalate(escalation, back) => Leg::Escalate(escalation, back),
                    });
                }
                Err((failure, back)) => {
                    responder = back;
                    tracing::warn!(upstream = %upstream.name, "attempt failed: {}", failure.describe());
                    last = Some((upstream.name.clone(), failure));
                }
            }
        }
    }
    let tried = tried.join(", ");
    match last {
        None => Err(ProxyError::NoUpstream(tried)),
        Some((name, Failure::Status(response))) => Ok(Leg::Served(Served {
            response: response.map(body::full),
            upstream: name,
            from_cache: false,
        })),
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
