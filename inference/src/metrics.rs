//! Prometheus metrics the engine and HTTP side update, and their text exposition for /metrics.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::FinishReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishLabel {
    reason: &'static str,
}

/// Every metric, registered once under the `switchyard_inference` prefix.
pub struct Metrics {
    registry: Registry,
    /// Jobs waiting for a slot.
    pub queue_depth: Gauge,
    /// Slots serving a request now.
    pub slots_busy: Gauge,
    pub slots_total: Gauge,
    /// Requests refused with 429 because the queue was full.
    pub rejected: Counter,
    /// Requests whose client went away before the end; their slot was freed.
    pub cancelled: Counter,
    pub finished: Family<FinishLabel, Counter>,
    pub generated_tokens: Counter,
    /// Prompt tokens run through the model.
    pub prompt_tokens_evaluated: Counter,
    /// Prompt tokens whose KV was reused from the prefix cache.
    pub prompt_tokens_cached: Counter,
    /// Requests that reused at least one token of a slot's cached prefix.
    pub prefix_hits: Counter,
    pub prefix_misses: Counter,
    /// Generation tokens/s over the last second, all slots together.
    pub gen_tokens_per_second: Gauge<f64, AtomicU64>,
    /// Prompt tokens/s over the last second.
    pub prompt_tokens_per_second: Gauge<f64, AtomicU64>,
    /// Seconds from accepting a request to its first sampled token.
    pub ttft: Histogram,
    /// Seconds a request waited in the queue.
    pub queue_wait: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("switchyard_inference"),
            queue_depth: Gauge::default(),
            slots_busy: Gauge::default(),
            slots_total: Gauge::default(),
            rejected: Counter::default(),
            cancelled: Counter::default(),
            finished: Family::default(),
            generated_tokens: Counter::default(),
            prompt_tokens_evaluated: Counter::default(),
            prompt_tokens_cached: Counter::default(),
            prefix_hits: Counter::default(),
            prefix_misses: Counter::default(),
            gen_tokens_per_second: Gauge::default(),
            prompt_tokens_per_second: Gauge::default(),
            ttft: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            queue_wait: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        };
        let r = &mut m.registry;
        r.register("queue_depth", "Requests waiting for a slot", m.queue_depth.clone());
        r.register("slots_busy", "Slots serving a request", m.slots_busy.clone());
        r.register("slots_total", "Slots (--parallel)", m.slots_total.clone());
        r.register("rejected_queue_full", "Requests refused with 429", m.rejected.clone());
        r.register("cancelled", "Requests whose client left early", m.cancelled.clone());
        r.register("requests_finished", "Requests finished, by finish_reason", m.finished.clone());
        r.register("generated_tokens", "Tokens sampled", m.generated_tokens.clone());
        r.register(
            "prompt_tokens_evaluated",
            "Prompt tokens decoded",
            m.prompt_tokens_evaluated.clone(),
        );
        r.register(
            "prompt_tokens_cached",
            "Prompt tokens reused from the prefix cache",
            m.prompt_tokens_cached.clone(),
        );
        r.register(
            "prefix_cache_hits",
            "Requests that reused a cached prefix",
            m.prefix_hits.clone(),
        );
        r.register(
            "prefix_cache_misses",
            "Requests that reused no cached prefix",
            m.prefix_misses.clone(),
        );
        r.register(
            "generation_tokens_per_second",
            "Generated tokens/s over the last second",
            m.gen_tokens_per_second.clone(),
        );
        r.register(
            "prompt_tokens_per_second",
            "Prompt tokens/s over the last second",
            m.prompt_tokens_per_second.clone(),
        );
        r.register("time_to_first_token_seconds", "Accept to first sampled token", m.ttft.clone());
        r.register("queue_wait_seconds", "Time spent queued", m.queue_wait.clone());
        m
    }

    /// Adds the trace exporter's counters (`switchyard_inference_trace_spans_dropped_total`,
    /// `_exported_total`, `switchyard_inference_trace_exports_failed_total`).
    pub fn register_trace_export(&mut self, counters: &switchyard_otel::ExportCounters) {
        counters.register(&mut self.registry);
    }

    pub fn finished(&self, reason: FinishReason) {
        self.finished.get_or_create(&FinishLabel { reason: reason.as_str() }).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
