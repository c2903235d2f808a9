//! Per-plugin numbers for /metrics and the admin API: calls, instance starts (ready or new),
//! failures by kind, the plugin's own counters, and call time in a small lock-free log-scale histogram (p50/p99 within ~19%).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::error::FailureKind;

/// Four buckets per power of two of nanoseconds, up to 2^32 ns (~4.3 s).
const BUCKETS: usize = 128;
/// Most distinct counter names one plugin may create; more are ignored (bounded memory).
const MAX_COUNTERS: usize = 64;

/// Numbers for one plugin name; they survive hot swaps of that plugin.
#[derive(Debug)]
pub struct PluginStats {
    calls: AtomicU64,
    /// Requests that found an initialised instance waiting, and requests that made their own.
    ready_starts: AtomicU64,
    new_starts: AtomicU64,
    failures: [AtomicU64; FailureKind::COUNT],
    buckets: [AtomicU64; BUCKETS],
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Default for PluginStats {
    fn default() -> Self {
        Self {
            calls: AtomicU64::new(0),
            ready_starts: AtomicU64::new(0),
            new_starts: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            counters: Mutex::new(BTreeMap::new()),
        }
    }
}

impl PluginStats {
    /// Count one call (a hook invocation including instantiation) and its duration.
    pub(crate) fn record_call(&self, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.buckets[bucket_of(took)].fetch_add(1, Ordering::Relaxed);
    }

    /// Count one request's instance: `ready` when it was waiting initialised (a spare or a reused
    /// instance), otherwise instantiated and initialised on the request's path.
    pub(crate) fn record_start(&self, ready: bool) {
        let counter = if ready { &self.ready_starts } else { &self.new_starts };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_failure(&self, kind: &FailureKind) {
        self.failures[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counter_add(&self, name: &str, delta: u64) {
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        if let Some(v) = counters.get_mut(name) {
            *v = v.saturating_add(delta);
        } else if counters.len() < MAX_COUNTERS && name.len() <= 64 {
            counters.insert(name.to_string(), delta);
        }
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Request instances that were ready, and ones made on the request's path.
    pub fn starts(&self) -> (u64, u64) {
        (self.ready_starts.load(Ordering::Relaxed), self.new_starts.load(Ordering::Relaxed))
    }

    /// Failures so far, all kinds.
    pub fn failures(&self) -> u64 {
        self.failures.iter().map(|f| f.load(Ordering::Relaxed)).sum()
    }

    /// Failures by kind label (`FailureKind::LABELS` order).
    pub fn failures_by_kind(&self) -> [(&'static str, u64); FailureKind::COUNT] {
        std::array::from_fn(|i| (FailureKind::LABELS[i], self.failures[i].load(Ordering::Relaxed)))
    }

    /// The plugin's own counters (`counter-add`).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The `q` quantile (0.0..=1.0) of call time: the upper bound of its bucket.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i));
            }
        }
        Some(upper_bound(BUCKETS - 1))
    }
}

fn bucket_of(d: Duration) -> usize {
    let ns = d.as_nanos().max(1) as f64;
    ((ns.log2() * 4.0) as usize).min(BUCKETS - 1)
}

fn upper_bound(bucket: usize) -> Duration {
    Duration::from_nanos(2f64.powf((bucket + 1) as f64 / 4.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let s = PluginStats::default();
        for us in 1..=100u64 {
            s.record_call(Duration::from_micros(us));
        }
        let p50 = s.quantile(0.5).unwrap().as_micros();
        let p99 = s.quantile(0.99).unwrap().as_micros();
        assert!((50..=62).contains(&p50), "p50 {p50}");
        assert!((99..=120).contains(&p99), "p99 {p99}");
        assert_eq!(s.calls(), 100);
    }
}
