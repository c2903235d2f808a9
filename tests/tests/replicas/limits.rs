//! The limits hold over every proxy of a cluster together: exact request counts, token and
//! budget reservations that concurrent requests cannot overrun, and usage charged when the
//! upstream never reported it. Each body runs for both stores (`both_stores!`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use switchyard_tests::client;
use switchyard_tests::mock::Behavior;

use crate::support::{Cluster, Kind, body, prompt_estimate, reported};

crate::both_stores!(
    requests_per_minute_are_exact,
    concurrent_streams_never_reserve_past_the_token_limit,
    concurrent_requests_never_overspend_the_budget,
    streams_without_reported_usage_are_charged,
    concurrency_slots_are_shared,
    a_client_gone_before_the_answer_frees_its_slot,
);

/// 36 simultaneous requests over the proxies against 10 a minute: exactly 10 reach the upstream.
async fn requests_per_minute_are_exact(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "requests_per_minute = 10").await else { return };
    let cluster = Arc::new(cluster);
    cluster.fresh_window().await;
    let tasks: Vec<_> = (0..36)
        .map(|i| {
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move { cluster.chat(i, &body(false, 16)).await })
        })
        .collect();
    let mut remaining: Vec<u64> = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status.as_u16() {
            200 => remaining.push(reply.header("x-ratelimit-remaining-requests").parse().unwrap()),
            429 => {
                assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
                assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
                assert_eq!(reply.header("x-ratelimit-limit-requests"), "10");
            }
            status => panic!("{status}: {}", reply.text()),
        }
    }
    // Each admission saw the count the one before it left: one atomic step, never a shared read.
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    assert_eq!(cluster.upstream.hits(), 10, "the refused requests never left");
    Arc::into_inner(cluster).unwrap().stop().await;
}

/// Sends `count` requests over the proxies while the mock holds every admitted one, so that all
/// reservations are in place at once; returns how many were admitted, once all were answered
/// (the held ones released) and every refusal was checked to be a 429 with `refusal`'s code and `retry-after`.
async fn burst(
    cluster: &Arc<Cluster>,
    count: usize,
    (stream, max_tokens): (bool, u64),
    refusal: &str,
) -> usize {
    cluster.upstream.hold();
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (cluster, refused) = (Arc::clone(cluster), Arc::clone(&refused));
            tokio::spawn(async move {
                let response = client::send(cluster.request(i, &body(stream, max_tokens))).await;
                if response.status() == 429 {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                client::read(response).await
            })
        })
        .collect();
    // Every request is either refused or held at the mock: all admissions are made.
    cluster.wait_for_hits(|| count - refused.load(Ordering::SeqCst)).await;
    let admitted = cluster.upstream.hits();
    cluster.upstream.release();
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status.as_u16() {
            200 => {}
            429 => {
                assert_eq!(reply.json()["error"]["code"], refusal, "{}", reply.text());
                assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
            }
            status => panic!("{status}: {}", reply.text()),
        }
    }
    admitted
}

/// 50 simultaneous streams of `max_tokens` 1000 against 10,000 tokens a minute: exactly as many
/// as fit reserved at once; once settled, the shared window holds what the mock reported.
async fn concurrent_streams_never_reserve_past_the_token_limit(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "tokens_per_minute = 10000").await else { return };
    let cluster = Arc::new(cluster);
    cluster.fresh_window().await;
    let admitted = burst(&cluster, 50, (true, 1000), "rate_limit_exceeded").await;
    let per_request = prompt_estimate() + 1000;
    assert_eq!(admitted as u64, 10_000 / per_request, "{per_request} tokens reserved each");
    let window = cluster.settled(|t| t["window"]["tokens_this_minute"] != 0).await;
    let (tokens, _) = reported(&cluster.upstream);
    assert_eq!(window["tokens_this_minute"], tokens, "{window}");
    Arc::into_inner(cluster).unwrap().stop().await;
}

/// 30 simultaneous requests whose worst case is $0.010011 against $0.1 a day: 9 admitted; the
/// day's spend, once settled, is what the mock reported, priced.
async fn concurrent_requests_never_overspend_the_budget(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "budget_usd_per_day = 0.1").await else { return };
    let cluster = Arc::new(cluster);
    cluster.fresh_window().await;
    let admitted = burst(&cluster, 30, (false, 100), "insufficient_quota").await;
    let worst_micro_usd = prompt_estimate() * crate::support::INPUT_USD_PER_MTOK
        + 100 * crate::support::OUTPUT_USD_PER_MTOK;
    assert_eq!(admitted as u64, 100_000 / worst_micro_usd, "{worst_micro_usd} µUSD each");
    let window = cluster.settled(|t| t["window"]["cost_usd_today"] != 0.0).await;
    let (_, micro_usd) = reported(&cluster.upstream);
    let spent = window["cost_usd_today"].as_f64().unwrap();
    assert!((spent - micro_usd as f64 / 1e6).abs() < 1e-9, "{window} vs {micro_usd} µUSD");
    assert!(spent <= 0.1);
    Arc::into_inner(cluster).unwrap().stop().await;
}

/// A stream whose upstream ignores `include_usage`, a stream the upstream breaks, and a stream
/// whose client goes away are each charged for what was relayed (on three different proxies).
async fn streams_without_reported_usage_are_charged(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "tokens_per_minute = 100000").await else { return };
    let cases = [
        Behavior::IgnoresUsageOption,
        Behavior::FailAfterEvents(3),
        Behavior::SlowEvents(std::time::Duration::from_millis(300)),
    ];
    cluster.fresh_window().await;
    for (i, behavior) in cases.into_iter().enumerate() {
        cluster.upstream.set_behavior(behavior.clone());
        let before = cluster.total("completion_tokens").await;
        let window_before = cluster.settled(|_| true).await["tokens_this_minute"].as_u64();
        let response = client::send(cluster.request(i, &body(true, 100))).await;
        assert_eq!(response.status(), 200, "{behavior:?}");
        let mut stream = response.into_body();
        if matches!(behavior, Behavior::SlowEvents(_)) {
            // The client leaves after the first event.
            assert!(stream.frame().await.unwrap().unwrap().data_ref().is_some());
            drop(stream);
        } else {
            while let Some(Ok(_)) = stream.frame().await {}
        }
        let requests = i as u64 + 1;
        cluster.settled(|_| true).await;
        let mut charged = cluster.total("completion_tokens").await;
        for _ in 0..3000 {
            if charged > before && cluster.total("requests").await == requests {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            charged = cluster.total("completion_tokens").await;
        }
        assert!(charged > before, "{behavior:?} charged nothing: {}", cluster.usage(i).await);
        // The shared window was charged too, not only this replica's totals.
        let window = cluster.settled(|_| true).await;
        assert!(window["tokens_this_minute"].as_u64() > window_before, "{behavior:?}: {window}");
    }
    cluster.stop().await;
}

/// 20 simultaneous requests against 5 in flight, all admitted ones held: exactly 5 slots are
/// taken over the proxies together, and every slot is given back when they end.
async fn concurrency_slots_are_shared(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "max_concurrent = 5").await else { return };
    let cluster = Arc::new(cluster);
    let admitted = burst(&cluster, 20, (true, 100), "rate_limit_exceeded").await;
    assert_eq!(admitted, 5);
    cluster.settled(|_| true).await;
    // Freed slots admit again.
    assert_eq!(cluster.chat(1, &body(false, 16)).await.status, 200);
    Arc::into_inner(cluster).unwrap().stop().await;
}

/// A client that leaves while its admitted request waits for the upstream's headers: the slot is
/// given back (a leaked slot would refuse the tenant until its lease ends) and the request is
/// charged (never less than nothing).
async fn a_client_gone_before_the_answer_frees_its_slot(kind: Kind) {
    let Some(cluster) = Cluster::start(kind, "max_concurrent = 1").await else { return };
    let cluster = Arc::new(cluster);
    cluster.upstream.hold();
    let task = {
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move { cluster.chat(0, &body(true, 100)).await })
    };
    cluster.wait_for_hits(|| 1).await;
    task.abort();
    let _ = task.await;
    cluster.upstream.release();
    cluster.settled(|_| true).await;
    let reply = cluster.chat(1, &body(false, 16)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    Arc::into_inner(cluster).unwrap().stop().await;
}
