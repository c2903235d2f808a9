//! The request's way through the proxy, in one straight line:
//! accept → authenticate → parse → plugins (request phase) → route → cache → limits (admission) →
//! dispatch (with fallback and the response phase) → respond → record (when the body ends).
//!
//! Each step is a function in its own module; this file only orders them, stamps every
//! response with `x-request-id`, `x-switchyard-upstream` and `x-switchyard-cache`, and hands the
//! response body the request's record to complete when it ends (`record`).

use std::sync::Arc;

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use tracing::Instrument;

use crate::admission::{self, Held};
use crate::body::{self, Body};
use crate::cache::{CacheStatus, Cached, ClientDirective, Identity, Plan, Store};
use crate::dispatch::{self, FromCache, Outbound, Served};
use crate::error::ProxyError;
use crate::models;
use crate::plugin::PluginRegistry;
use crate::record::{self, Meta, Outcome};
use crate::request::{Endpoint, ParsedRequest};
use crate::request_phase::{self, Forward, RequestPhase};
use crate::respond::Responder;
use crate::state::State;
use crate::telemetry::TraceContext;
use crate::trail::Trail;
use crate::upstream::Upstream;

/// Handles one client request; never fails, errors become OpenAI-shaped responses. Its record
/// (access log, usage metrics) is completed when the response body ends, however it ends.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let trail = Arc::new(Trail::new());
    if let Some(telemetry) = &state.telemetry {
        trail.set_trace(TraceContext::from_headers(request.headers(), telemetry.sample_ratio));
    }
    let endpoint = Endpoint::from_path(request.uri().path());
    let mut meta = Meta {
        request_id: request_id(&request),
        endpoint: endpoint.map_or("unknown", Endpoint::path),
        ..Meta::default()
    };
    let mut cache = CacheStatus::Bypass;
    let mut held = Held::default();
    let span = state.log_ids.then(|| log_span(&meta.request_id, &trail));
    // Boxed, and awaited at one point: an async fn's state holds every future it awaits, and
    // each level that holds a future inline copies it whole when it is built and moved. Held
    // inline here (twice, once per way to await it) the request's future was 41 KB, copied
    // several times per request (BENCHMARKS.md, "Proxy overhead", session 16).
    let served = Box::pin(serve(&state, request, &trail, &mut meta, &mut held, &mut cache))
        .instrument(span.unwrap_or_else(tracing::Span::none))
        .await;
    let (response, upstream) = match served {
        Ok(Served { response, upstream, .. }) => (response, upstream),
        Err(error) => {
            if error.blame() != crate::error::Blame::Client {
                tracing::warn!(request_id = %meta.request_id, "request failed: {error}");
            }
            (error.into_response(), "none".to_string())
        }
    };
    trail.first_token();
    let label = endpoint.map_or("unknown", Endpoint::label);
    state.metrics.request(label, response.status().as_u16(), &upstream);
    state.metrics.cache_request(cache.as_str());
    let (mut parts, body) = response.into_parts();
    let headers = &mut parts.headers;
    headers.insert("x-switchyard-cache", HeaderValue::from_static(cache.as_str()));
    if let Ok(value) = HeaderValue::try_from(meta.request_id.as_str()) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::try_from(upstream.as_str()) {
        headers.insert("x-switchyard-upstream", value);
    }
    admission::headers(&state, meta.tenant.as_deref(), &held, headers);
    let outcome = Outcome { status: parts.status.as_u16(), cache, upstream };
    let length =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let reservation = held.reservation;
    let finish = move |how| record::finish(&state, &meta, &outcome, &trail, how, reservation);
    let body = body::on_end(body, length, finish);
    Response::from_parts(parts, body)
}

async fn serve(
    state: &State,
    request: Request<Incoming>,
    trail: &Arc<Trail>,
    meta: &mut Meta,
    held: &mut Held,
    cache: &mut CacheStatus,
) -> Result<Served, ProxyError> {
    let request_id = meta.request_id.as_str();
    let path = request.uri().path().to_string();
    let endpoint = Endpoint::from_path(&path).ok_or_else(|| ProxyError::NotFound(path.clone()))?;
    if request.method() != endpoint.method() {
        return Err(ProxyError::MethodNotAllowed { method: request.method().to_string(), path });
    }
    let tenant = state.tenants.authenticate(request.headers())?;
    meta.tenant.clone_from(&tenant);
    if endpoint == Endpoint::Models {
        return Ok(models::list(&state.upstreams).await);
    }
    let shown = shown_headers(state, request.headers());
    let client_cache = ClientDirective::from_headers(request.headers());
    // The body's bytes stay reserved in the shared budget until this request is done.
    let (raw, _reserved) = body::read_limited(
        request,
        state.max_body_bytes,
        Some(&state.body_budget),
        state.body_read_timeout,
    )
    .await?;
    let mut parsed = ParsedRequest::parse(endpoint, raw)?;
    meta.stream = parsed.stream();
    // The two large futures of this one are boxed, so that it stays small (see `handle`); with
    // no plugins there is no phase to build.
    let phase = match &state.plugins {
        None => RequestPhase::Forward(Box::default()),
        Some(registry) => {
            let tenant = tenant.as_deref();
            Box::pin(plugins(state, registry, &mut parsed, tenant, shown, trail)).await?
        }
    };
    let forward = match phase {
        RequestPhase::Forward(forward) => *forward,
        RequestPhase::Respond(response, plugin) => {
            tracing::debug!(%request_id, %plugin, "answered by a plugin");
            return Ok(Served { response, upstream: "none".into(), from_cache: false });
        }
    };
    let Forward { route: plugin_route, add_headers, cache: policy, tags, watch } = forward;
    if !tags.is_empty() {
        tracing::debug!(%request_id, ?tags, "plugin tags");
    }
    meta.tags = tags;
    let chain = route(state, endpoint, plugin_route, &mut parsed);
    meta.model = parsed.model().map(str::to_string);
    // The key covers the request as it will be forwarded (edits and route applied).
    let identity = || match Identity::of(&parsed, &chain, &add_headers) {
        Ok(identity) => Some(identity),
        Err(error) => {
            tracing::warn!(%request_id, "not caching: {error}");
            None
        }
    };
    let plan =
        state.cache.plan(policy.as_ref(), tenant.as_deref(), endpoint, client_cache, identity);
    let outbound = Outbound {
        request_id,
        add_headers: &add_headers,
        metrics: &state.metrics,
        limits: state.response_limits,
        upstreams: &state.upstreams,
        trail,
    };
    let (store, hit) = lookup(state, plan, cache).await;
    let send_usage = parsed.usage_asked();
    let responder = Responder::new(watch, store, parsed.stream(), Arc::clone(trail), send_usage);
    // Streams are counted from the upstream's usage chunk; the client gets it only if it asked.
    parsed.ask_for_usage();
    let hit = hit.filter(|entry| entry.fits(parsed.stream()));
    let tenant = tenant.as_deref();
    let to = Target { chain: &chain, request: &parsed, outbound: &outbound, tenant };
    Box::pin(answer(state, to, responder, hit, held, cache)).await
}

/// The plugin chain's request phase.
async fn plugins(
    state: &State,
    registry: &PluginRegistry,
    parsed: &mut ParsedRequest,
    tenant: Option<&str>,
    shown: Vec<(String, String)>,
    trail: &Arc<Trail>,
) -> Result<RequestPhase, ProxyError> {
    let set = registry.current();
    // Only when a plugin of the chain imports `tenant-limits`: in memory a read of the counters;
    // with Redis the windows of this replica's latest Redis reply when it is fresh enough, so
    // the request's one round trip stays its admission (ledger::fresh).
    let limits = match tenant {
        Some(tenant) if set.reads_tenant_limits() => state.ledger.rate(tenant).await,
        _ => None,
    };
    let limits = tenant.zip(limits).map(|(t, r)| request_phase::limits_snapshot(t, &r));
    request_phase::on_request(&set, parsed, tenant, shown, limits.as_ref(), Some(trail)).await
}

/// The cache entry to fill and the hit to serve, as the plan says (this replica's cache, then
/// the shared level when there is one).
async fn lookup(
    state: &State,
    plan: Plan,
    cache: &mut CacheStatus,
) -> (Option<Store>, Option<Arc<Cached>>) {
    match plan {
        Plan::Use { key, ttl, read } => {
            // `no-cache` from the client: fetch fresh (and refresh the entry), reported as bypass.
            *cache = if read { CacheStatus::Miss } else { CacheStatus::Bypass };
            // Boxed: the shared level's lookup is large, and only cached requests build it.
            let hit = if read { Box::pin(state.cache.lookup(&key)).await } else { None };
            (Some(Store { cache: Arc::clone(&state.cache), key, ttl }), hit)
        }
        Plan::Bypass => (None, None),
    }
}

/// Where a request goes once it is ready to leave: its chain, the request as it will be sent,
/// what its attempts share, and whose limits it counts against.
struct Target<'a> {
    chain: &'a [Arc<Upstream>],
    request: &'a ParsedRequest,
    outbound: &'a Outbound<'a>,
    tenant: Option<&'a str>,
}

/// The cache hit when it can serve, else the upstreams; each admitted against the tenant's
/// limits first (a hit against requests per minute only).
async fn answer(
    state: &State,
    to: Target<'_>,
    mut responder: Responder,
    hit: Option<Arc<Cached>>,
    held: &mut Held,
    cache: &mut CacheStatus,
) -> Result<Served, ProxyError> {
    if let Some(entry) = hit {
        admission::cache_hit(state, to.tenant, held).await?;
        match Box::pin(dispatch::from_cache(&entry, responder)).await {
            FromCache::Served(served) => {
                *cache = CacheStatus::Hit;
                return Ok(served);
            }
            FromCache::Escalate(escalation, back) => {
                admission::reserve(state, to.tenant, to.request, to.chain, held).await?;
                let escalated = dispatch::escalate(escalation, to.request, to.outbound, back);
                return Box::pin(escalated).await;
            }
            FromCache::Unusable(back) => responder = back,
        }
    }
    admission::reserve(state, to.tenant, to.request, to.chain, held).await?;
    dispatch::dispatch(to.chain, to.request, to.outbound, responder).await
}

/// The span whose fields (request id, trace id, the server span's id) every log line of the
/// request carries, for `[log] format = "json"`.
fn log_span(request_id: &str, trail: &Trail) -> tracing::Span {
    let (trace_id, span_id) = trail.trace_ids_hex().unwrap_or_default();
    tracing::info_span!("request", request_id = %request_id, trace_id = %trace_id, span_id = %span_id)
}

/// The upstream chain: a plugin's route when one was set, else the configured default.
fn route(
    state: &State,
    endpoint: Endpoint,
    route: Option<crate::plugin::Route>,
    request: &mut ParsedRequest,
) -> Vec<Arc<Upstream>> {
    match route {
        Some(route) => {
            if let Some(model) = &route.model {
                request.set_model(model);
            }
            std::iter::once(&route.upstream)
                .chain(&route.fallbacks)
                .filter_map(|name| state.upstreams.get(name).cloned())
                .collect()
        }
        None if endpoint == Endpoint::ImagesGenerations => state.image_chain.clone(),
        None => state.text_chain.clone(),
    }
}

/// The request headers the operator chose to show plugins (`plugins.headers`).
fn shown_headers(state: &State, headers: &http::HeaderMap) -> Vec<(String, String)> {
    state
        .plugin_headers
        .iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_string(), value.to_string()))
        })
        .collect()
}

/// The client's `x-request-id` when it is sane, else a fresh random one.
fn request_id(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(random_id, str::to_string)
}

/// 32 random lowercase hex digits (what `{:032x}` of a random `u128` prints, without the
/// formatter).
fn random_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    (0..32).rev().map(|i| char::from(HEX[(n >> (i * 4)) as usize & 15])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns: for an async fn, its future.
    fn returned_size<A, B, C, D, E, F, R>(_: fn(A, B, C, D, E, F) -> R) -> usize {
        size_of::<R>()
    }

    /// Each level of the request's futures is copied whole when it is built and moved, so a large
    /// future awaited inline at any depth is copied at every level above it (BENCHMARKS.md, "Proxy
    /// overhead", session 21). Cold or large paths are boxed where they are awaited; these bounds
    /// catch one that is not. Sizes when written: `answer` 3,384 bytes, `serve` 2,144.
    #[test]
    fn the_request_futures_stay_small() {
        type St = &'static State;
        type Status = &'static mut CacheStatus;
        let answer =
            returned_size::<St, Target<'static>, Responder, Option<Arc<Cached>>, _, Status, _>(
                |s, t, r, h, held: &'static mut Held, c| answer(s, t, r, h, held, c),
            );
        let serve = returned_size::<St, Request<Incoming>, &'static Arc<Trail>, _, _, Status, _>(
            |s, r, t, meta: &'static mut Meta, held: &'static mut Held, c| {
                serve(s, r, t, meta, held, c)
            },
        );
        assert!(answer <= 4096, "pipeline::answer's future is {answer} bytes");
        assert!(serve <= 3072, "pipeline::serve's future is {serve} bytes");
    }

    #[test]
    fn a_fresh_request_id_is_32_lowercase_hex_digits() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{a}");
        assert_ne!(a, b);
    }
}
