//! Redis killed, stopped or restarted mid-run: admission does what `on_unavailable` says, the
//! outage is counted in the metrics, and the ledger recovers once Redis is back (its state lost).

use std::time::Duration;

use switchyard::config::OnUnavailable;
use switchyard::ledger::headers::RefusalKind;
use switchyard::ledger::{Ask, Limits, Usage};

use crate::support::{Kind, RedisServer, Replicas, Setup, TENANT};

const ASK: Ask = Ask { cache_hit: false, tokens: 100, cost_micros: 0 };

fn setup(on_unavailable: OnUnavailable) -> Setup {
    let limits = Limits { requests_per_minute: Some(10), ..Limits::default() };
    Setup { on_unavailable, ..Setup::new(limits) }
}

/// Redis loses everything (`FLUSHALL`), as a restart without persistence would.
async fn flush_all(r: &Replicas) {
    let socket = &r.redis.as_ref().unwrap().socket;
    let flushed = tokio::process::Command::new("redis-cli")
        .arg("-s")
        .arg(socket)
        .arg("FLUSHALL")
        .output()
        .await
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&flushed.stdout).trim(), "OK");
}

fn encoded(r: &Replicas, i: usize) -> String {
    let mut registry = prometheus_client::registry::Registry::with_prefix("switchyard");
    r.metrics[i].register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_fails_closed_then_recovers_without_its_state() {
    let Some(mut r) = Replicas::start(Kind::Redis, &setup(OnUnavailable::Closed)).await else {
        return;
    };
    let before: Vec<_> =
        futures_util::future::join_all((0..4).map(|i| r.replica(i).admit(TENANT, ASK))).await;
    assert!(before.iter().all(Result::is_ok));
    r.redis.as_mut().unwrap().kill().await;
    for i in 0..3 {
        let refusal = r.replica(i).admit(TENANT, ASK).await.unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::Unavailable);
        assert_eq!((refusal.status().as_u16(), refusal.code()), (503, "ledger_unavailable"));
        let response = refusal.into_response();
        assert_eq!(response.headers()["retry-after"], "1");
    }
    // Settling while Redis is down loses the settlement, counted, never a panic or a hang.
    for admission in before {
        admission.unwrap().reservation.settle("local", None, &Usage::default()).await;
    }
    let metrics = encoded(&r, 0);
    assert!(metrics.contains("switchyard_ledger_unavailable_total{op=\"admit\"} 1"), "{metrics}");
    assert!(metrics.contains("switchyard_ledger_unavailable_total{op=\"settle\"}"), "{metrics}");
    // A new server on the same socket: no scripts cached (NOSCRIPT), no counters (all 10 again).
    r.redis = Some(RedisServer::start(r.dir.path()).await.unwrap());
    let mut admitted = 0;
    for i in 0..15 {
        admitted += usize::from(r.replica(i).admit(TENANT, ASK).await.is_ok());
    }
    assert_eq!(admitted, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_fails_open_uncounted_and_counted_in_metrics() {
    let Some(mut r) = Replicas::start(Kind::Redis, &setup(OnUnavailable::Open)).await else {
        return;
    };
    r.redis.as_mut().unwrap().kill().await;
    // Far past the limit of 10: every one is admitted while Redis is down.
    for i in 0..12 {
        let admission = r.replica(i).admit(TENANT, ASK).await.expect("fail open");
        let usage = Usage { prompt_tokens: 5, completion_tokens: 5, cached_prompt_tokens: 0 };
        admission.reservation.settle("local", None, &usage).await;
    }
    let metrics = encoded(&r, 1);
    assert!(
        metrics.contains("switchyard_ledger_open_admits_total{tenant=\"acme\"} 4"),
        "{metrics}"
    );
    let usage = r.replica(1).snapshot(TENANT).await;
    assert!(usage.window.is_none() && usage.error.is_some());
    assert_eq!(
        (usage.totals_since_start.unchecked, usage.totals_since_start.completion_tokens),
        (4, 20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_is_unavailable_after_the_timeout() {
    let mut setup = setup(OnUnavailable::Closed);
    setup.timeout = Duration::from_millis(200);
    let Some(r) = Replicas::start(Kind::Redis, &setup).await else { return };
    // A first admission loads the script and pools a connection.
    let first = r.replica(0).admit(TENANT, ASK).await.unwrap();
    let server = r.redis.as_ref().unwrap();
    server.signal("STOP").await;
    let refusal = r.replica(0).admit(TENANT, ASK).await.unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::Unavailable);
    server.signal("CONT").await;
    // The timed-out call's connection was dropped, not reused: the next answer is its own.
    first.reservation.release().await;
    let window = r.replica(0).snapshot(TENANT).await.window.expect("redis is back");
    // The stalled admission may have run once Redis resumed: its request counts (overcounts,
    // never under), but the slot of a request that was refused is never held: its lane counts
    // only the reservations its callers took.
    assert!((1..=2).contains(&window.requests_this_minute), "{window:?}");
    assert_eq!(window.in_flight, 0, "{window:?}");
}

/// Concurrency in Redis is counted per replica lane, each lane writing its own count with every
/// script; a lane whose lease has ended (its replica died, or has run nothing for
/// `lease_seconds`) stops counting, and counts again from its next script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_frees_its_slots_when_its_lease_ends() {
    let limits = Limits { max_concurrent: Some(2), ..Limits::default() };
    let Some(r) = Replicas::start(Kind::Redis, &Setup::new(limits)).await else { return };
    let held = [r.replica(0).admit(TENANT, ASK).await, r.replica(0).admit(TENANT, ASK).await];
    assert!(held.iter().all(Result::is_ok));
    let refusal = r.replica(1).admit(TENANT, ASK).await.unwrap_err();
    assert_eq!(refusal.code(), "rate_limit_exceeded");
    // Replica 0 goes silent for longer than its lease (900 s in these tests).
    r.advance(900_001);
    let other = r.replica(1).admit(TENANT, ASK).await.expect("replica 0's lease has ended");
    // Replica 0 was only silent: its next script counts its two requests again.
    assert!(r.replica(0).admit(TENANT, ASK).await.is_err(), "2 + 1 in flight, limit 2");
    let window = r.replica(1).snapshot(TENANT).await.window.expect("redis");
    assert_eq!(window.in_flight, 3);
    other.reservation.release().await;
    for admission in held {
        admission.unwrap().reservation.release().await;
    }
    let window = r.replica(2).snapshot(TENANT).await.window.expect("redis");
    assert_eq!(window.in_flight, 0);
}

/// Redis loses its data (a restart without persistence, `FLUSHALL`, eviction): each replica still
/// knows its requests in flight, and its next script writes them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_lost_by_redis_come_back_with_the_replicas_next_call() {
    let limits = Limits { max_concurrent: Some(3), ..Limits::default() };
    let Some(r) = Replicas::start(Kind::Redis, &Setup::new(limits)).await else { return };
    let held = [r.replica(0).admit(TENANT, ASK).await, r.replica(0).admit(TENANT, ASK).await];
    assert!(held.iter().all(Result::is_ok));
    flush_all(&r).await;
    let third = r.replica(0).admit(TENANT, ASK).await.expect("2 + 1 in flight, limit 3");
    let refusal = r.replica(1).admit(TENANT, ASK).await.unwrap_err();
    assert_eq!(refusal.code(), "rate_limit_exceeded", "replica 0's three slots are counted again");
    third.reservation.release().await;
    for admission in held {
        admission.unwrap().reservation.release().await;
    }
}

/// Redis lost the minute's window, then an admission and a settlement of a reservation made
/// before the loss go in one batch: the settlement adds its use to what the admission reserved,
/// never overwrites it. (A current-thread test: both calls are queued before the batch leaves.)
#[tokio::test]
async fn a_settlement_after_lost_state_adds_to_the_admissions_beside_it() {
    let limits = Limits { tokens_per_minute: Some(1_000), ..Limits::default() };
    let Some(r) = Replicas::start(Kind::Redis, &Setup::new(limits)).await else { return };
    let before = r.replica(0).admit(TENANT, ASK).await.expect("admitted");
    flush_all(&r).await;
    let used = Usage { prompt_tokens: 0, completion_tokens: 10, cached_prompt_tokens: 0 };
    let (after, _) = tokio::join!(
        r.replica(0).admit(TENANT, ASK),
        before.reservation.settle("local", None, &used)
    );
    let window = r.replica(0).snapshot(TENANT).await.window.expect("redis");
    assert_eq!(window.tokens_this_minute, 100 + 10, "the new reservation and the old one's use");
    after.expect("admitted").reservation.release().await;
}
