//! Per-worker handles to a metric family's series, for the request path: a worker finds a series
//! it has used before by comparing borrowed label values, without allocating label strings,
//! hashing them, or taking the family's shared lock. A series is still created only when it is
//! first counted, so an unused label set never shows up as a zero.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::{Family, MetricConstructor};

/// Handles one worker keeps per family; a series past these is looked up in the family each
/// time (labels from upstream answers, such as model names, are not bounded).
const PER_WORKER: usize = 64;

/// Slots of handles; workers past this many share one (by index modulo), which stays correct.
const SLOTS: usize = 16;

/// One worker's handles, on a cache line of its own so that workers never contend.
#[repr(align(128))]
#[derive(Debug)]
struct Slot<L, M>(Mutex<Vec<(L, M)>>);

/// A family and each worker's handles to the series it has used (cheap to clone: both are
/// shared).
#[derive(Debug)]
pub struct Series<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    slots: Arc<[Slot<L, M>]>,
}

impl<L, M, C: Clone> Clone for Series<L, M, C> {
    fn clone(&self) -> Self {
        Self { family: self.family.clone(), slots: Arc::clone(&self.slots) }
    }
}

impl<L: Clone + std::hash::Hash + Eq, M: Default> Default for Series<L, M> {
    fn default() -> Self {
        Self::new(Family::default())
    }
}

impl<L, M, C> Series<L, M, C> {
    pub fn new(family: Family<L, M, C>) -> Self {
        let slots = (0..SLOTS).map(|_| Slot(Mutex::new(Vec::new()))).collect();
        Self { family, slots }
    }

    /// The family, for registering and reading.
    pub fn family(&self) -> &Family<L, M, C> {
        &self.family
    }
}

impl<L, M, C> Series<L, M, C>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug,
    M: Clone,
    C: MetricConstructor<M>,
{
    /// Runs `f` on the series whose labels `matches` accepts; on this worker's first use it is
    /// found (or created) in the family from `labels()`. `matches` must accept exactly the
    /// label set `labels` builds.
    pub fn with<R>(
        &self,
        matches: impl Fn(&L) -> bool,
        labels: impl FnOnce() -> L,
        f: impl FnOnce(&M) -> R,
    ) -> R {
        let slot = &self.slots[crate::worker::current() % SLOTS];
        let mut held = slot.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, metric)) = held.iter().find(|(l, _)| matches(l)) {
            return f(metric);
        }
        let labels = labels();
        let metric = self.family.get_or_create(&labels).clone();
        let result = f(&metric);
        if held.len() < PER_WORKER {
            held.push((labels, metric));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Labels {
        name: String,
    }

    fn count(series: &Series<Labels, Counter>, name: &str) {
        let labels = || Labels { name: name.to_string() };
        series.with(|l| l.name == name, labels, |c| c.inc());
    }

    fn read(series: &Series<Labels, Counter>, name: &str) -> u64 {
        series.family().get_or_create(&Labels { name: name.into() }).get()
    }

    #[test]
    fn each_label_set_counts_on_its_own_series_of_the_family() {
        let series = Series::<Labels, Counter>::default();
        for _ in 0..3 {
            count(&series, "a");
        }
        count(&series, "b");
        assert_eq!((read(&series, "a"), read(&series, "b")), (3, 1));
        // A clone shares the family and the handles.
        count(&series.clone(), "a");
        assert_eq!(read(&series, "a"), 4);
    }

    #[test]
    fn series_past_what_a_worker_holds_are_still_counted() {
        let series = Series::<Labels, Counter>::default();
        let names: Vec<String> = (0..PER_WORKER + 10).map(|i| format!("m{i}")).collect();
        for _ in 0..2 {
            for name in &names {
                count(&series, name);
            }
        }
        assert!(names.iter().all(|name| read(&series, name) == 2));
    }

    #[test]
    fn a_series_never_counted_is_not_created() {
        let series = Series::<Labels, Counter>::default();
        count(&series, "used");
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("calls", "calls", series.family().clone());
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        assert!(text.contains("name=\"used\""), "{text}");
        assert_eq!(text.matches("calls_total{").count(), 1, "{text}");
    }
}
