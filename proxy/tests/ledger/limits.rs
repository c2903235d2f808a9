//! The ledger's limits, each test run once over the memory store and once over Redis, by three
//! ledgers sharing the store as three replicas would: concurrent admissions never pass a limit
//! together, settlement replaces reservations with use, windows reset.

use std::sync::Arc;

use futures_util::future::join_all;
use switchyard::config::PriceConfig;
use switchyard::ledger::headers::RefusalKind;
use switchyard::ledger::{Admission, Ask, Limits, Prices, Usage};

use crate::support::{Kind, Replicas, Setup, TENANT};

crate::both_stores!(
    requests_per_minute_admit_exactly_the_limit,
    token_reservations_never_pass_the_limit_and_settle_to_the_use,
    a_day_budget_is_never_overspent,
    a_free_request_is_admitted_on_a_spent_budget,
    concurrency_slots_are_held_until_settled_or_released,
    cache_hits_count_against_requests_only,
    use_settled_after_its_window_lands_in_the_current_one,
    settled_together_after_their_window_each_charges_its_own_excess,
);

fn ask(tokens: u64) -> Ask {
    Ask { cache_hit: false, tokens, cost_micros: 0 }
}

/// `n` admissions at once, spread over the replicas: the admitted ones, and the refusals.
async fn admit_all(
    r: &Replicas,
    n: usize,
    ask: Ask,
) -> (Vec<Admission>, Vec<switchyard::ledger::Refusal>) {
    let tasks = (0..n).map(|i| {
        let ledger = r.replica(i).clone();
        tokio::spawn(async move { ledger.admit(TENANT, ask).await })
    });
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for result in join_all(tasks).await {
        match result.expect("admission task") {
            Ok(admission) => admitted.push(admission),
            Err(refusal) => refused.push(refusal),
        }
    }
    (admitted, refused)
}

async fn requests_per_minute_admit_exactly_the_limit(kind: Kind) {
    let limits = Limits { requests_per_minute: Some(10), ..Limits::default() };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    let (admitted, refused) = admit_all(&r, 3 * 12, ask(1)).await;
    assert_eq!((admitted.len(), refused.len()), (10, 26));
    let refusal = refused.into_iter().next().unwrap();
    assert_eq!(refusal.code(), "rate_limit_exceeded");
    assert_eq!(refusal.status(), 429);
    // 5 s into the minute: 55 s until it resets.
    assert_eq!(refusal.retry_after_secs(), 55);
    let response = refusal.into_response();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
    assert_eq!(header("retry-after"), "55");
    assert_eq!(header("x-ratelimit-limit-requests"), "10");
    assert_eq!(header("x-ratelimit-remaining-requests"), "0");
    assert_eq!(header("x-ratelimit-reset-requests"), "55s");
    for admission in admitted {
        admission.reservation.release().await;
    }
    // Releasing does not give requests back; the next minute does.
    assert!(r.replica(0).admit(TENANT, ask(1)).await.is_err());
    r.advance(55_000);
    let (admitted, _) = admit_all(&r, 15, ask(1)).await;
    assert_eq!(admitted.len(), 10);
    for admission in admitted {
        admission.reservation.release().await;
    }
}

async fn token_reservations_never_pass_the_limit_and_settle_to_the_use(kind: Kind) {
    let limits = Limits { tokens_per_minute: Some(10_000), ..Limits::default() };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    let (admitted, refused) = admit_all(&r, 50, ask(1_000)).await;
    assert_eq!(admitted.len(), 10, "reservations of 1,000 against 10,000 tokens a minute");
    assert!(refused.iter().all(|f| f.code() == "rate_limit_exceeded"));
    let peak = r.replica(1).snapshot(TENANT).await.window.unwrap();
    assert_eq!(peak.tokens_this_minute, 10_000);
    assert_eq!(peak.in_flight, 10);
    // Each settles with less than it reserved: the window then holds exactly the use.
    let mut used = 0;
    for (i, admission) in admitted.into_iter().enumerate() {
        let usage =
            Usage { prompt_tokens: 40 + i as u64, completion_tokens: 300, cached_prompt_tokens: 0 };
        used += usage.total();
        admission.reservation.settle("local", None, &usage).await;
    }
    let after = r.replica(2).snapshot(TENANT).await;
    let window = after.window.unwrap();
    assert_eq!((window.tokens_this_minute, window.in_flight), (used, 0));
    assert_eq!(after.remaining.unwrap().tokens, Some(10_000 - used));
    let totals: u64 = join_all(r.ledgers.iter().map(|l| l.snapshot(TENANT)))
        .await
        .iter()
        .map(|s| s.totals_since_start.prompt_tokens + s.totals_since_start.completion_tokens)
        .sum();
    assert_eq!(totals, used, "the replicas' totals add up to what was settled");
    // What settlement gave back is admitted again, and no more.
    let (again, _) = admit_all(&r, 50, ask(1_000)).await;
    assert_eq!(again.len() as u64, (10_000 - used) / 1_000);
    // A single request larger than the whole limit is refused, not admitted.
    assert!(r.replica(0).admit(TENANT, ask(20_000)).await.is_err());
    for admission in again {
        admission.reservation.release().await;
    }
}

fn hosted_prices() -> Prices {
    Prices::new(vec![PriceConfig {
        upstream: "hosted".into(),
        model: None,
        input_usd_per_mtok: 1.0,
        output_usd_per_mtok: 10.0,
        cached_input_usd_per_mtok: None,
    }])
}

async fn a_day_budget_is_never_overspent(kind: Kind) {
    let limits = Limits { budget_micros_per_day: Some(1_000_000), ..Limits::default() };
    let mut setup = Setup::new(limits);
    setup.prices = hosted_prices();
    let Some(r) = Replicas::start(kind, &setup).await else { return };
    // 1,000 prompt + 6,900 completion tokens at most: 0.001 + 0.069 = $0.07 worst case.
    let ask =
        r.replica(0).ask(TENANT, &[("local", None), ("hosted", Some("m"))], 1_000, Some(6_900));
    assert_eq!((ask.tokens, ask.cost_micros), (7_900, 70_000));
    let (admitted, refused) = admit_all(&r, 40, ask).await;
    assert_eq!(admitted.len(), 14, "14 × $0.07 fit in $1, a 15th would not");
    let refusal = &refused[0];
    assert_eq!(refusal.code(), "insufficient_quota");
    assert!(matches!(refusal.kind, RefusalKind::Limited { exceeded, .. } if exceeded.budget()));
    // Until the end of the UTC day: T0 is 1 h 5 s into it.
    assert_eq!(refusal.retry_after_secs(), 23 * 3600 - 5);
    let usage = Usage { prompt_tokens: 1_000, completion_tokens: 2_900, cached_prompt_tokens: 0 };
    for admission in admitted {
        let usd = admission.reservation.settle("hosted", Some("m"), &usage).await;
        assert!((usd - 0.03).abs() < 1e-12, "{usd}");
    }
    let spent = r.replica(1).snapshot(TENANT).await.window.unwrap().cost_usd_today;
    assert!((spent - 14.0 * 0.03).abs() < 1e-9, "{spent}");
    let (more, _) = admit_all(&r, 40, ask).await;
    assert_eq!(more.len(), 8, "($1 - $0.42) / $0.07");
    for admission in more {
        admission.reservation.release().await;
    }
    // The next UTC day starts from zero.
    r.advance(23 * 3600 * 1000);
    let (next_day, _) = admit_all(&r, 40, ask).await;
    assert_eq!(next_day.len(), 14);
    for admission in next_day {
        admission.reservation.release().await;
    }
}

/// A request that may only reach free upstreams reserves $0 and spends nothing: the budget never
/// refuses it, even one overspent by an upstream that used more than was reserved (the
/// tier-router's budget rule relies on this to answer from the local tier).
async fn a_free_request_is_admitted_on_a_spent_budget(kind: Kind) {
    let limits = Limits { budget_micros_per_day: Some(10_000), ..Limits::default() };
    let mut setup = Setup::new(limits);
    setup.prices = hosted_prices();
    let Some(r) = Replicas::start(kind, &setup).await else { return };
    // 100 prompt + 100 completion tokens at most: $0.0001 + $0.001.
    let hosted = r.replica(0).ask(TENANT, &[("hosted", None)], 100, Some(100));
    let admission = r.replica(0).admit(TENANT, hosted).await.expect("fits the $0.01");
    // The upstream ignored max_tokens: $0.0001 + $0.02, past the whole budget.
    let usage = Usage { prompt_tokens: 100, completion_tokens: 2_000, cached_prompt_tokens: 0 };
    admission.reservation.settle("hosted", None, &usage).await;
    let refusal = r.replica(1).admit(TENANT, hosted).await.expect_err("the budget is spent");
    assert_eq!(refusal.code(), "insufficient_quota");
    let free = r.replica(2).ask(TENANT, &[("local", None)], 100, Some(100));
    assert_eq!(free.cost_micros, 0);
    let admission = r.replica(2).admit(TENANT, free).await.expect("a free request is admitted");
    admission.reservation.release().await;
}

async fn concurrency_slots_are_held_until_settled_or_released(kind: Kind) {
    let limits = Limits { max_concurrent: Some(3), ..Limits::default() };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    let (mut admitted, refused) = admit_all(&r, 12, ask(10)).await;
    assert_eq!(admitted.len(), 3);
    assert!(refused.iter().all(|f| f.code() == "rate_limit_exceeded" && f.retry_after_secs() == 1));
    admitted.pop().unwrap().reservation.release().await;
    let one_more = r.replica(2).admit(TENANT, ask(10)).await.expect("a slot was freed");
    assert!(r.replica(0).admit(TENANT, ask(10)).await.is_err());
    one_more.reservation.settle("local", None, &Usage::default()).await;
    // A reservation dropped unsettled (its task cancelled) frees its slot too, off the request
    // path: fill the slots, drop one, and wait until a new admission gets its slot.
    let _filler = r.replica(1).admit(TENANT, ask(10)).await.expect("the third slot");
    assert!(r.replica(2).admit(TENANT, ask(10)).await.is_err());
    drop(admitted.pop());
    let ledger = Arc::new(r.replica(1).clone());
    let mut freed = None;
    for _ in 0..500 {
        match ledger.admit(TENANT, ask(10)).await {
            Ok(admission) => {
                freed = Some(admission);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    assert!(freed.is_some(), "the dropped reservation's slot was never freed");
    // ...and is charged as reserved (10 tokens), never given back: 3 × 10 admitted, 10 released,
    // 10 admitted and settled at 0, the filler's 10, 10 dropped (kept), 10 admitted now.
    let window = r.replica(0).snapshot(TENANT).await.window.unwrap();
    assert_eq!((window.tokens_this_minute, window.in_flight), (40, 3));
}

async fn cache_hits_count_against_requests_only(kind: Kind) {
    let limits = Limits {
        requests_per_minute: Some(3),
        tokens_per_minute: Some(1),
        max_concurrent: Some(1),
        budget_micros_per_day: Some(0),
    };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    for i in 0..3 {
        let rate = r.replica(i).admit_cache_hit(TENANT).await.expect("a cache hit");
        assert_eq!(rate.remaining().requests, Some(2 - i as u64));
    }
    let refusal = r.replica(0).admit_cache_hit(TENANT).await.unwrap_err();
    assert_eq!(refusal.code(), "rate_limit_exceeded");
    let window = r.replica(1).snapshot(TENANT).await.window.unwrap();
    assert_eq!(
        (window.requests_this_minute, window.tokens_this_minute, window.in_flight),
        (3, 0, 0)
    );
}

async fn use_settled_after_its_window_lands_in_the_current_one(kind: Kind) {
    let limits = Limits { tokens_per_minute: Some(1_000), ..Limits::default() };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    let over = r.replica(0).admit(TENANT, ask(100)).await.unwrap();
    let under = r.replica(1).admit(TENANT, ask(100)).await.unwrap();
    r.advance(60_000);
    let usage = |n| Usage { prompt_tokens: 0, completion_tokens: n, cached_prompt_tokens: 0 };
    // A stream that ran past its minute and used more than it reserved: the excess counts now.
    over.reservation.settle("local", None, &usage(250)).await;
    under.reservation.settle("local", None, &usage(30)).await;
    let window = r.replica(2).snapshot(TENANT).await.window.unwrap();
    assert_eq!((window.tokens_this_minute, window.in_flight), (150, 0));
}

/// The same, with the settlements of one replica at once (in Redis they go in one batch, summed:
/// one request's unused reservation must not cancel another's excess).
async fn settled_together_after_their_window_each_charges_its_own_excess(kind: Kind) {
    let limits = Limits { tokens_per_minute: Some(1_000), ..Limits::default() };
    let Some(r) = Replicas::start(kind, &Setup::new(limits)).await else { return };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(r.replica(0).admit(TENANT, ask(100)).await.unwrap());
    }
    r.advance(60_000);
    let usage = |n| Usage { prompt_tokens: 0, completion_tokens: n, cached_prompt_tokens: 0 };
    let uses = [0, 250, 30];
    join_all(held.into_iter().zip(uses).map(|(admission, used)| async move {
        admission.reservation.settle("local", None, &usage(used)).await
    }))
    .await;
    let window = r.replica(1).snapshot(TENANT).await.window.unwrap();
    assert_eq!((window.tokens_this_minute, window.in_flight), (150, 0), "250 - 100 beyond");
}
