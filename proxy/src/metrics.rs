//! Prometheus metrics: what is counted, and the text exposition served on the admin listener.
//!
//! - [`plugins`]: the plugin runtime's numbers, collected from its registry at scrape time.
//! - [`cache`]: the response cache's size, read at scrape time.
//! - [`ledger`]: tokens and cost by tenant, upstream and model; the usage ledger's refusals and
//!   store outages.
//! - [`series`]: the per-thread handles through which the request path counts.

pub mod cache;
pub mod ledger;
pub mod plugins;
pub mod series;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use series::Series;

/// Labels of a client request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
    /// The upstream that answered, or `none`.
    pub upstream: String,
}

/// Labels of one attempt at an upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub upstream: String,
    /// `ok`, `client_error`, `rate_limited`, `server_error`, `connect_error`, `timeout`,
    /// `stream_broken`.
    pub outcome: &'static str,
}

/// Labels naming one upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

/// Labels of a cache lookup.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit`, `miss` or `bypass`.
    pub result: &'static str,
}

/// Labels naming one worker thread.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: u64,
}

/// Labels naming a listener.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `api` or `admin`.
    pub listener: &'static str,
}

/// Every metric the proxy keeps.
pub struct Metrics {
    registry: Registry,
    /// Client requests by endpoint, final status and answering upstream.
    pub requests: Series<RequestLabels, Counter>,
    /// Upstream attempts by outcome; fallbacks show up as several attempts per request.
    pub attempts: Series<AttemptLabels, Counter>,
    /// Time from sending to an upstream until its answer was committed (headers, or the first
    /// content event of a stream).
    pub upstream_latency: Series<UpstreamLabels, Histogram>,
    /// Time from a request's arrival until its first content left for the client (the whole
    /// answer, when not streamed), by the upstream that answered.
    pub first_token: Series<UpstreamLabels, Histogram>,
    /// Completion tokens per second of a stream after its first token, by upstream.
    pub tokens_per_second: Series<UpstreamLabels, Histogram>,
    /// Requests a watching plugin escalated, by the upstream they were escalated to.
    pub escalations: Family<UpstreamLabels, Counter>,
    /// Requests by what the response cache did for them.
    pub cache_requests: Series<CacheLabels, Counter>,
    /// API connections accepted, by the worker that serves them.
    pub connections: Family<WorkerLabels, Counter>,
    /// Connections closed at accept because the listener's connection cap was reached.
    pub connections_refused: Family<ListenerLabels, Counter>,
    /// Tokens, cost and the usage ledger's own numbers (handed to [`crate::ledger::Ledger`]).
    pub ledger: ledger::LedgerMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Series::<RequestLabels, Counter>::default();
        let attempts = Series::<AttemptLabels, Counter>::default();
        let seconds = || Histogram::new(exponential_buckets(0.0005, 2.0, 18));
        let rates = || Histogram::new(exponential_buckets(1.0, 2.0, 14));
        let upstream_latency = Series::new(Family::new_with_constructor(seconds as fn() -> _));
        let first_token = Series::new(Family::new_with_constructor(seconds as fn() -> _));
        let tokens_per_second = Series::new(Family::new_with_constructor(rates as fn() -> _));
        let escalations = Family::<UpstreamLabels, Counter>::default();
        let cache_requests = Series::<CacheLabels, Counter>::default();
        let connections = Family::<WorkerLabels, Counter>::default();
        let connections_refused = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at accept: the listener's connection cap was reached",
            connections_refused.clone(),
        );
        registry.register(
            "connections",
            "API connections accepted, by worker",
            connections.clone(),
        );
        registry.register(
            "cache_requests",
            "Requests by cache result",
            cache_requests.family().clone(),
        );
        registry.register("requests", "Client requests answered", requests.family().clone());
        registry.register("escalations", "Requests escalated by a plugin", escalations.clone());
        registry.register(
            "upstream_attempts",
            "Attempts sent to upstreams",
            attempts.family().clone(),
        );
        registry.register(
            "upstream_latency_seconds",
            "Time until an upstream answer was committed",
            upstream_latency.family().clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Time from a request's arrival to its first content sent (whole answers: the answer)",
            first_token.family().clone(),
        );
        registry.register(
            "tokens_per_second",
            "Completion tokens per second of a stream after its first token",
            tokens_per_second.family().clone(),
        );
        let ledger = ledger::LedgerMetrics::default();
        ledger.register(&mut registry);
        Self {
            registry,
            ledger,
            requests,
            attempts,
            upstream_latency,
            first_token,
            tokens_per_second,
            escalations,
            cache_requests,
            connections,
            connections_refused,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }

    /// Adds the plugin metrics (`switchyard_plugin_*`), read from `registry` on each scrape.
    pub fn register_plugins(&mut self, registry: Arc<crate::plugin::PluginRegistry>) {
        self.registry.register_collector(Box::new(plugins::PluginCollector { registry }));
    }

    /// Adds the response cache's size (`switchyard_cache_bytes`, `switchyard_cache_entries`).
    pub fn register_cache(&mut self, cache: Arc<crate::cache::ResponseCache>) {
        self.registry.register_collector(Box::new(cache::CacheCollector { cache }));
    }

    /// Adds `switchyard_access_log_dropped_total`: access-log lines dropped because the writer
    /// was behind.
    pub fn register_access_log(&mut self, dropped: prometheus_client::metrics::counter::Counter) {
        self.registry.register(
            "access_log_dropped",
            "Access-log lines dropped because the writer was behind",
            dropped,
        );
    }

    /// Adds the trace exporter's counters (`switchyard_trace_spans_dropped_total`,
    /// `_exported_total`, `switchyard_trace_exports_failed_total`).
    pub fn register_trace_export(&mut self, counters: &crate::telemetry::export::ExportCounters) {
        counters.register(&mut self.registry);
    }

    /// Counts one attempt at an upstream.
    pub fn attempt(&self, upstream: &str, outcome: &'static str) {
        let labels = || AttemptLabels { upstream: upstream.to_string(), outcome };
        self.attempts.with(|l| l.outcome == outcome && l.upstream == upstream, labels, |c| c.inc());
    }

    /// Counts one answered request.
    pub fn request(&self, endpoint: &'static str, status: u16, upstream: &str) {
        let matches = |l: &RequestLabels| {
            l.status == status && l.endpoint == endpoint && l.upstream == upstream
        };
        let labels = || RequestLabels { endpoint, status, upstream: upstream.to_string() };
        self.requests.with(matches, labels, |c| c.inc());
    }

    /// Counts what the response cache did for one request (`hit`, `miss` or `bypass`).
    pub fn cache_request(&self, result: &'static str) {
        let labels = || CacheLabels { result };
        self.cache_requests.with(|l| l.result == result, labels, |c| c.inc());
    }

    /// Observes `value` in `histogram`'s series for `upstream`.
    pub fn observe(histogram: &Series<UpstreamLabels, Histogram>, upstream: &str, value: f64) {
        let labels = || UpstreamLabels { upstream: upstream.to_string() };
        histogram.with(|l| l.upstream == upstream, labels, |h| h.observe(value));
    }
}
