//! Plugin metrics, read from the [`PluginRegistry`] at scrape time (a prometheus-client
//! `Collector`), so the request path does no extra work: the plugin runtime already counts calls,
//! failures and call time per plugin in its own atomics.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::plugin::PluginRegistry;

/// Encodes the live plugin set's numbers on every scrape.
#[derive(Debug)]
pub struct PluginCollector {
    /// The registry of the running proxy; its `list()` is cheap (atomics, one small lock each).
    pub registry: Arc<PluginRegistry>,
}

impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let plugins = self.registry.list();
        let engine = self.registry.engine();

        let mut calls = encoder.encode_descriptor(
            "plugin_calls",
            "Plugin hook calls",
            None,
            MetricType::Counter,
        )?;
        for p in &plugins {
            ConstCounter::new(p.calls)
                .encode(calls.encode_family(&[("plugin", p.name.as_str())])?)?;
        }

        let mut starts = encoder.encode_descriptor(
            "plugin_instance_starts",
            "Request-phase instances: ready (made before the request, or reused) or new (made on its path)",
            None,
            MetricType::Counter,
        )?;
        for p in &plugins {
            for (from, n) in [("ready", p.ready_starts), ("new", p.new_starts)] {
                let labels = [("plugin", p.name.as_str()), ("from", from)];
                ConstCounter::new(n).encode(starts.encode_family(&labels)?)?;
            }
        }

        let mut failures = encoder.encode_descriptor(
            "plugin_failures",
            "Plugin call failures by kind (timeout, memory, trap, invalid_decision, ...)",
            None,
            MetricType::Counter,
        )?;
        for p in &plugins {
            let mut kinds: Vec<_> = p.failures_by_kind.iter().collect();
            kinds.sort();
            for (kind, n) in kinds {
                let labels = [("plugin", p.name.as_str()), ("kind", kind)];
                ConstCounter::new(*n).encode(failures.encode_family(&labels)?)?;
            }
        }

        let mut call_time = encoder.encode_descriptor(
            "plugin_call_seconds",
            "Plugin call time quantiles since start (log-scale buckets, within ~19%)",
            None,
            MetricType::Gauge,
        )?;
        for p in &plugins {
            for (quantile, us) in [("0.5", p.p50_us), ("0.99", p.p99_us)] {
                if let Some(us) = us {
                    let labels = [("plugin", p.name.as_str()), ("quantile", quantile)];
                    ConstGauge::new(us / 1e6).encode(call_time.encode_family(&labels)?)?;
                }
            }
        }

        let mut loaded = encoder.encode_descriptor(
            "plugin_loaded_timestamp_seconds",
            "When the live version of each plugin went live, by its sha256",
            None,
            MetricType::Gauge,
        )?;
        for p in &plugins {
            let labels = [("plugin", p.name.as_str()), ("sha256", p.sha256.as_str())];
            let at = p.loaded_at_unix_ms as f64 / 1e3;
            ConstGauge::new(at).encode(loaded.encode_family(&labels)?)?;
        }

        let generation = self.registry.current().generation as i64;
        ConstGauge::new(generation).encode(encoder.encode_descriptor(
            "plugin_generation",
            "Plugin sets swapped in since start",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(engine.free_instances() as i64).encode(encoder.encode_descriptor(
            "plugin_instances_free",
            "Plugin instance slots free right now",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(i64::from(engine.limits().max_instances)).encode(
            encoder.encode_descriptor(
                "plugin_instances_max",
                "Plugin instance slots in all (plugins.max_instances)",
                None,
                MetricType::Gauge,
            )?,
        )?;
        ConstGauge::new(engine.warm_instances() as i64).encode(encoder.encode_descriptor(
            "plugin_instances_warm",
            "Plugin instances in warm pool slots now (at most plugins.resident_instances)",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(engine.idle_resident_bytes() as i64).encode(encoder.encode_descriptor(
            "plugin_idle_resident_bytes",
            "Bytes of written pages that free pool slots keep for the next instance",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(engine.memory_in_use() as i64).encode(encoder.encode_descriptor(
            "plugin_memory_bytes",
            "Linear memory all plugin instances hold now (bounded by plugins.memory_budget_mib)",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}
