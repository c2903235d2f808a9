//! The limits snapshot plugins get (`tenant-limits`) over Redis: the windows of the replica's
//! latest admission or settlement reply, with no read of its own while it is younger than
//! `limits_snapshot_max_age_ms`; a replica with no recent reply reads once; a bound of 0 reads
//! every time. Store calls are counted by `switchyard_ledger_store_calls_total{op}`.

use std::time::Duration;

use switchyard::ledger::{Ask, Limits, Usage};
use switchyard::metrics::ledger::{LedgerMetrics, OpLabels};

use crate::support::{Kind, Replicas, Setup, TENANT};

fn calls(metrics: &LedgerMetrics, op: &'static str) -> u64 {
    metrics.store_calls.get_or_create(&OpLabels { op }).get()
}

fn setup(max_age: Duration) -> Setup {
    let limits = Limits { requests_per_minute: Some(100), ..Limits::default() };
    Setup { snapshot_max_age: max_age, ..Setup::new(limits) }
}

const ASK: Ask = Ask { cache_hit: false, tokens: 50, cost_micros: 0 };

#[tokio::test]
async fn plugins_see_the_latest_reply_without_a_read_of_their_own() {
    let Some(r) = Replicas::start(Kind::Redis, &setup(Duration::from_secs(60))).await else {
        return;
    };
    let (ledger, metrics) = (r.replica(0), &r.metrics[0]);
    let admission = ledger.admit(TENANT, ASK).await.expect("admitted");
    let rate = ledger.rate(TENANT).await.expect("a snapshot");
    assert_eq!((rate.windows.requests, rate.windows.tokens, rate.windows.concurrent), (1, 50, 1));
    let usage = Usage { prompt_tokens: 4, completion_tokens: 6, ..Usage::default() };
    admission.reservation.settle("local", None, &usage).await;
    let rate = ledger.rate(TENANT).await.expect("a snapshot");
    assert_eq!((rate.windows.requests, rate.windows.tokens, rate.windows.concurrent), (1, 10, 0));
    assert_eq!((calls(metrics, "admit"), calls(metrics, "settle")), (1, 1));
    assert_eq!(calls(metrics, "snapshot"), 0, "no round trip for the plugins' view");

    // Replica 1 saw no reply yet: one read, then its answer serves the next requests.
    let (other, other_metrics) = (r.replica(1), &r.metrics[1]);
    for _ in 0..3 {
        let rate = other.rate(TENANT).await.expect("a snapshot");
        assert_eq!((rate.windows.requests, rate.windows.tokens), (1, 10));
    }
    assert_eq!(calls(other_metrics, "snapshot"), 1);

    // The store's minute ends: the snapshot shows the new, empty window without a read.
    r.advance(60_000);
    let rate = ledger.rate(TENANT).await.expect("a snapshot");
    assert_eq!((rate.windows.requests, rate.windows.tokens), (0, 0));
    assert_eq!(calls(metrics, "snapshot"), 0);
}

#[tokio::test]
async fn a_bound_of_zero_reads_the_store_for_every_request() {
    let Some(r) = Replicas::start(Kind::Redis, &setup(Duration::ZERO)).await else { return };
    let (ledger, metrics) = (r.replica(0), &r.metrics[0]);
    let _held = ledger.admit(TENANT, ASK).await.expect("admitted");
    for n in 1..=3 {
        // Another replica admits between two reads: each read sees it.
        let _also = r.replica(1).admit(TENANT, ASK).await.expect("admitted");
        let rate = ledger.rate(TENANT).await.expect("a snapshot");
        assert_eq!(rate.windows.requests, 1 + n);
        assert_eq!(calls(metrics, "snapshot"), n);
    }
}

#[tokio::test]
async fn the_memory_store_is_read_directly() {
    let Some(r) = Replicas::start(Kind::Memory, &setup(Duration::from_secs(60))).await else {
        return;
    };
    let (ledger, metrics) = (r.replica(0), &r.metrics[0]);
    let _held = ledger.admit(TENANT, ASK).await.expect("admitted");
    let _also = r.replica(1).admit(TENANT, ASK).await.expect("admitted");
    let rate = ledger.rate(TENANT).await.expect("a snapshot");
    assert_eq!(rate.windows.requests, 2, "exact: the other admission is seen at once");
    assert_eq!(calls(metrics, "snapshot"), 1);
}
