//! Per-thread handles to a metric family's series, for the request path: a worker thread finds a
//! series it has used before by comparing borrowed label values, without allocating label
//! strings, hashing them, or taking a lock (each lock is an atomic instruction on a line that an
//! idle worker has usually lost from its caches). A series is still created only when it is first
//! counted, so an unused label set never shows up as a zero. A thread keeps its handles until it
//! exits, including those of a dropped family: meant for the process's own metrics, which live as
//! long as it does.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::{Family, MetricConstructor};

/// Handles one thread keeps per family; a series past these is looked up in the family each
/// time (labels from upstream answers, such as model names, are not bounded).
const PER_THREAD: usize = 64;

/// Numbers each [`Series`] (its clones share the number, as they share the family).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's handles, by series number: a `Vec<(L, M)>` for each series it has counted
    /// on. Thread-local, so that finding one takes no lock and no atomic instruction.
    static HELD: RefCell<Vec<Option<Box<dyn Any>>>> = const { RefCell::new(Vec::new()) };
}

/// A family, and each thread's handles to the series it has used (cheap to clone: the clone
/// shares both).
#[derive(Debug)]
pub struct Series<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    id: usize,
}

impl<L, M, C: Clone> Clone for Series<L, M, C> {
    fn clone(&self) -> Self {
        Self { family: self.family.clone(), id: self.id }
    }
}

impl<L: Clone + std::hash::Hash + Eq, M: Default> Default for Series<L, M> {
    fn default() -> Self {
        Self::new(Family::default())
    }
}

impl<L, M, C> Series<L, M, C> {
    pub fn new(family: Family<L, M, C>) -> Self {
        Self { family, id: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The family, for registering and reading.
    pub fn family(&self) -> &Family<L, M, C> {
        &self.family
    }
}

impl<L, M, C> Series<L, M, C>
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + 'static,
    M: Clone + 'static,
    C: MetricConstructor<M>,
{
    /// Runs `f` on the series whose labels `matches` accepts; on this thread's first use it is
    /// found (or created) in the family from `labels()`. `matches` must accept exactly the
    /// label set `labels` builds.
    pub fn with<R>(
        &self,
        matches: impl Fn(&L) -> bool,
        labels: impl FnOnce() -> L,
        f: impl FnOnce(&M) -> R,
    ) -> R {
        HELD.with(|held| {
            // Held while `f` runs: a call nested in `f` is served from the family instead.
            let Ok(mut held) = held.try_borrow_mut() else {
                return f(&self.family.get_or_create(&labels()));
            };
            if held.len() <= self.id {
                held.resize_with(self.id + 1, || None);
            }
            let mine = held[self.id].get_or_insert_with(|| Box::new(Vec::<(L, M)>::new()));
            let Some(mine) = mine.downcast_mut::<Vec<(L, M)>>() else {
                return f(&self.family.get_or_create(&labels()));
            };
            if let Some((_, metric)) = mine.iter().find(|(l, _)| matches(l)) {
                return f(metric);
            }
            let labels = labels();
            let metric = self.family.get_or_create(&labels).clone();
            let result = f(&metric);
            if mine.len() < PER_THREAD {
                mine.push((labels, metric));
            }
            result
        })
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
    fn series_past_what_a_thread_holds_are_still_counted() {
        let series = Series::<Labels, Counter>::default();
        let names: Vec<String> = (0..PER_THREAD + 10).map(|i| format!("m{i}")).collect();
        for _ in 0..2 {
            for name in &names {
                count(&series, name);
            }
        }
        assert!(names.iter().all(|name| read(&series, name) == 2));
    }

    #[test]
    fn families_threads_and_nested_calls_keep_their_own_counts() {
        let (one, two) =
            (Series::<Labels, Counter>::default(), Series::<Labels, Counter>::default());
        count(&one, "a");
        let labels = || Labels { name: "a".into() };
        // Counting inside another count (served from the family) still lands on its series.
        one.with(
            |l| l.name == "a",
            labels,
            |c| {
                c.inc();
                count(&two, "a");
            },
        );
        std::thread::scope(|scope| {
            scope.spawn(|| count(&one, "a"));
            scope.spawn(|| count(&two, "a"));
        });
        assert_eq!((read(&one, "a"), read(&two, "a")), (3, 2));
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
