//! Response-cache size metrics (and the shared level's counters), read from the cache at scrape time (a prometheus-client
//! `Collector`), so storing an answer costs no metric update.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::cache::ResponseCache;

/// Encodes the cache's bytes and entries on every scrape.
#[derive(Debug)]
pub struct CacheCollector {
    pub cache: Arc<ResponseCache>,
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.cache.sync();
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let bytes = encoder.encode_descriptor(
            "cache_bytes",
            "Bytes of answers held by the response cache",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(as_i64(self.cache.weighted_size())).encode(bytes)?;
        let entries = encoder.encode_descriptor(
            "cache_entries",
            "Answers held by the response cache",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(as_i64(self.cache.entry_count())).encode(entries)?;
        if let Some(stats) = self.cache.shared_stats() {
            let mut family = encoder.encode_descriptor(
                "cache_shared",
                "Lookups and stores of the shared (Redis) level, by result",
                None,
                MetricType::Counter,
            )?;
            for (result, count) in stats.counts() {
                let labels = [("result", result)];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(count).encode(metric)?;
            }
        }
        Ok(())
    }
}
