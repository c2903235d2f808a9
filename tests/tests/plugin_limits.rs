//! Each sandbox limit, proven against a plugin written to break it: the deadline stops an infinite
//! loop, the memory cap stops a memory bomb, traps and invalid decisions are contained, and each
//! goes through the plugin's failure policy (closed refuses, open skips). Also: a slow but legal
//! plugin passes, two requests never share plugin memory (in a warm pool slot or not), warm
//! slots are bounded, and the instance bound waits then says busy.

mod plugin_support;

use std::time::{Duration, Instant};

use plugin_support::*;
use serde_json::json;
use switchyard::plugin::{FailureKind, FailurePolicy, RequestOutcome};
use switchyard_tests::wasm;

/// Load `component` as plugin "p" under `policy`, run one request, return the outcome.
async fn run(
    component: &str,
    policy: FailurePolicy,
    config: serde_json::Value,
    tweak: impl FnOnce(&mut switchyard::plugin::PluginEntry),
) -> RequestOutcome {
    let dir = plugin_dir(&[("p.wasm", component)]);
    let mut e = entry("p", "p.wasm", policy, config);
    tweak(&mut e);
    let reg = registry(engine(8), dir.path(), vec![e]).await;
    reg.current().on_request(chat(&["héllo wörld 123"])).await
}

/// Closed must refuse with this kind; open must proceed with the failure recorded as skipped.
async fn assert_policies(
    component: &str,
    config: serde_json::Value,
    want: fn(&FailureKind) -> bool,
) {
    match run(component, FailurePolicy::Closed, config.clone(), |_| {}).await {
        RequestOutcome::Refuse(f) => {
            assert!(want(&f.kind), "closed: unexpected kind {:?}", f.kind);
            assert_eq!(&*f.plugin, "p");
            assert_eq!(f.http_status(), 500);
        }
        other => panic!("closed policy must refuse, got {other:?}"),
    }
    match run(component, FailurePolicy::Open, config, |_| {}).await {
        RequestOutcome::Proceed(p) => {
            assert_eq!(p.skipped.len(), 1);
            assert!(want(&p.skipped[0].kind), "open: unexpected kind {:?}", p.skipped[0].kind);
            assert_eq!(p.request.messages[0].content, "héllo wörld 123", "open skips the decision");
            assert!(p.route.is_none());
        }
        other => panic!("open policy must proceed, got {other:?}"),
    }
}

#[tokio::test]
async fn the_deadline_holds_after_the_idle_ticker_parked() {
    let dir = plugin_dir(&[("loop.wasm", wasm::BUSY_LOOP)]);
    let mut looping = entry("loop", "loop.wasm", FailurePolicy::Closed, json!({}));
    looping.timeout_ms = 5;
    let engine = engine(8);
    let reg = registry(engine.clone(), dir.path(), vec![looping]).await;
    // No call for longer than the longest deadline: the epoch ticker parks.
    // 1,100 ticks of 1 ms; a loaded machine oversleeps them.
    let parked_by = Instant::now() + Duration::from_secs(10);
    while !engine.ticker_parked() {
        assert!(Instant::now() < parked_by, "the ticker never parked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let RequestOutcome::Refuse(f) = reg.current().on_request(chat(&["hi"])).await else {
        panic!("the loop must be stopped");
    };
    assert_eq!(f.kind, FailureKind::Timeout);
    assert!(started.elapsed() < Duration::from_millis(150), "took {:?}", started.elapsed());
    assert!(!engine.ticker_parked(), "a call wakes the ticker");
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline_and_other_calls_still_work() {
    let dir = plugin_dir(&[("loop.wasm", wasm::BUSY_LOOP), ("noop.wasm", wasm::NOOP)]);
    let mut looping = entry("loop", "loop.wasm", FailurePolicy::Open, json!({}));
    looping.timeout_ms = 5;
    let noop = entry("noop", "noop.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine(8), dir.path(), vec![looping, noop]).await;

    for _ in 0..3 {
        let started = Instant::now();
        let outcome = reg.current().on_request(chat(&["hi"])).await;
        let took = started.elapsed();
        let RequestOutcome::Proceed(p) = outcome else {
            panic!("open loop plugin must be skipped: {outcome:?}");
        };
        assert_eq!(p.skipped[0].kind, FailureKind::Timeout);
        // 5 ms deadline + 2 ticks; the rest is slack for a loaded 2-core machine.
        assert!(took < Duration::from_millis(150), "deadline took {took:?}");
    }
    let info = reg.list();
    assert_eq!(info[0].failures, 3);
    assert_eq!(info[0].failures_by_kind["timeout"], 3);
    assert_eq!(info[1].failures, 0, "the next plugin in the chain still ran");
    assert_eq!(info[1].calls, 4, "probe + 3 requests");
}

#[tokio::test]
async fn infinite_loop_under_both_policies() {
    assert_policies(wasm::BUSY_LOOP, json!({}), |k| *k == FailureKind::Timeout).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_cap() {
    let outcome = run(wasm::MEMORY_BOMB, FailurePolicy::Closed, json!({}), |e| {
        e.memory_mib = Some(8);
    })
    .await;
    let RequestOutcome::Refuse(f) = outcome else {
        panic!("expected refusal: {outcome:?}");
    };
    assert_eq!(f.kind, FailureKind::MemoryCap);
    assert_policies(wasm::MEMORY_BOMB, json!({}), |k| *k == FailureKind::MemoryCap).await;
}

#[tokio::test]
async fn trap_under_both_policies() {
    assert_policies(wasm::TRAP, json!({}), |k| matches!(k, FailureKind::Trap(_))).await;
}

#[tokio::test]
async fn garbage_decisions_are_rejected_under_both_policies() {
    for kind in [
        "out-of-bounds",
        "bad-message",
        "char-boundary",
        "overlap",
        "unknown-upstream",
        "forbidden-header",
        "bad-status",
        "huge",
    ] {
        assert_policies(wasm::GARBAGE, json!({ "kind": kind }), |k| {
            matches!(k, FailureKind::InvalidDecision(_))
        })
        .await;
    }
    assert_policies(wasm::GARBAGE, json!({ "kind": "error" }), |k| {
        matches!(k, FailureKind::PluginError(_))
    })
    .await;
}

#[tokio::test]
async fn slow_but_legal_plugin_passes() {
    let outcome = run(wasm::SLOW, FailurePolicy::Closed, json!({ "ms": 3 }), |e| {
        e.timeout_ms = 500;
    })
    .await;
    let RequestOutcome::Proceed(p) = outcome else {
        panic!("slow plugin must pass: {outcome:?}");
    };
    assert_eq!(tag(&p.request, "slow"), Some("done"));
    assert!(p.skipped.is_empty());
}

#[tokio::test]
async fn two_requests_never_share_plugin_memory() {
    let dir = plugin_dir(&[("leaky.wasm", wasm::LEAKY)]);
    let e = entry("leaky", "leaky.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine(8), dir.path(), vec![e]).await;
    for secret in ["secret one", "secret two", "secret three", "secret four"] {
        let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&[secret])).await else {
            panic!("leaky plugin must proceed");
        };
        assert_eq!(tag(&p.request, "previous"), Some(""), "saw an earlier request's data");
        // Between requests the runtime makes a spare (instantiated, `init` done, never shown a
        // request) and drops the used instance, as a proxy worker does while it waits.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
    // The load probe and the first request made their own instances; the later ones found a
    // spare ready.
    let info = &reg.list()[0];
    assert_eq!((info.new_starts, info.ready_starts), (2, 3), "{info:?}");
}

#[tokio::test]
async fn reuse_isolation_keeps_instances_and_fresh_mode_never_does() {
    // The same leaky plugin with `isolation = "reuse"`: its static survives between requests,
    // which is exactly why the mode is opt-in and documented for plugins without request data.
    let dir = plugin_dir(&[("leaky.wasm", wasm::LEAKY)]);
    let mut e = entry("leaky", "leaky.wasm", FailurePolicy::Closed, json!({}));
    e.isolation = switchyard::plugin::Isolation::Reuse;
    let reg = registry(engine(2), dir.path(), vec![e]).await;
    let mut seen = Vec::new();
    for secret in ["one", "two", "three"] {
        let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&[secret])).await else {
            panic!("leaky plugin must proceed");
        };
        seen.push(tag(&p.request, "previous").unwrap_or("?").to_string());
    }
    // The load probe ran first on the same instance, so it shows up too.
    assert!(seen[1].ends_with("|one") && seen[2].ends_with("|one|two"), "{seen:?}");
    // Idle instances hold no gate permit: with 2 permits, many sequential requests never wait.
    for _ in 0..20 {
        assert!(matches!(reg.current().on_request(chat(&["x"])).await, RequestOutcome::Proceed(_)));
    }
}

#[tokio::test]
async fn warm_pool_slots_are_bounded_and_neither_pool_leaks_between_requests() {
    // One warm slot (it keeps the pages its instance wrote, for the next one): every other
    // instance runs in the overflow pool, whose slots keep nothing.
    let keep = 256 << 10;
    let engine = switchyard::plugin::PluginEngine::new(switchyard::plugin::EngineLimits {
        max_instances: 8,
        resident_instances: 1,
        keep_resident_bytes: keep,
        ..switchyard_tests::test_engine_limits()
    })
    .expect("engine");
    let dir = plugin_dir(&[("w.wasm", wasm::WATCHER), ("leaky.wasm", wasm::LEAKY)]);
    // Instances of a `reuse` plugin never take a warm slot: they are reset only when dropped.
    let mut reused = entry("w", "w.wasm", FailurePolicy::Closed, json!({}));
    reused.isolation = switchyard::plugin::Isolation::Reuse;
    let reg = registry(engine.clone(), dir.path(), vec![reused]).await;
    let p = watching(&reg).await;
    assert_eq!(engine.warm_instances(), 0, "a reused instance took a warm slot");
    drop(p);

    // Fresh instances (and their spares). What one instance leaves in its freed warm slot: the
    // pages it wrote (wasmtime finds them with PAGEMAP_SCAN), more than nothing.
    let fresh = entry("w", "w.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine.clone(), dir.path(), vec![fresh]).await;
    let one = kept_after(&engine, vec![watching(&reg).await]).await;
    assert!(one > 0 && one <= keep, "one instance: {one} bytes kept");
    // Five watching requests hold five instances at once, at most one of them warm; once they
    // are gone, free slots keep no more than that one slot's worth (the overflow slots keep
    // nothing).
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(watching(&reg).await);
        assert_eq!(engine.warm_instances(), 1, "{} warm", engine.warm_instances());
    }
    let burst = kept_after(&engine, held).await;
    assert!(burst <= 2 * one && burst <= keep, "after five: {burst} bytes kept (one: {one})");

    // A warm slot is reset to the component's initial memory like any other: a plugin that
    // keeps each request in a static never sees an earlier one, in either pool.
    let leaky = entry("leaky", "leaky.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine.clone(), dir.path(), vec![leaky]).await;
    for secret in ["one", "two", "three", "four", "five", "six"] {
        let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&[secret])).await else {
            panic!("leaky plugin must proceed");
        };
        assert_eq!(tag(&p.request, "previous"), Some(""), "saw an earlier request's data");
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
}

/// A fresh instance that served its request is dropped after the worker's other ready work while
/// few warm slots are taken (its reset stays off the request's path), and at once when half or
/// more are (so under load dead instances do not push live ones into overflow slots).
#[tokio::test]
async fn a_dead_fresh_instance_gives_its_warm_slot_back_at_once_when_the_pool_is_crowded() {
    let engine = switchyard::plugin::PluginEngine::new(switchyard::plugin::EngineLimits {
        max_instances: 16,
        resident_instances: 4,
        ..switchyard_tests::test_engine_limits()
    })
    .expect("engine");
    let dir = plugin_dir(&[("w.wasm", wasm::WATCHER), ("noop.wasm", wasm::NOOP)]);
    let noop = entry("noop", "noop.wasm", FailurePolicy::Closed, json!({}));
    let noop = registry(engine.clone(), dir.path(), vec![noop]).await;
    // Warm stores alive right after one request (before this task yields), against before it,
    // once every deferred drop and spare of earlier requests has run.
    let change = async || {
        settle().await;
        let before = engine.warm_instances() as i64;
        let RequestOutcome::Proceed(_) = noop.current().on_request(chat(&["a"])).await else {
            panic!("must proceed");
        };
        engine.warm_instances() as i64 - before
    };
    let quiet = change().await;
    let watcher = entry("w", "w.wasm", FailurePolicy::Closed, json!({}));
    let watcher = registry(engine.clone(), dir.path(), vec![watcher]).await;
    let held = [watching(&watcher).await, watching(&watcher).await];
    let crowded = change().await;
    assert_eq!(crowded, quiet - 1, "quiet pool: {quiet:+}, crowded pool: {crowded:+}");
    drop(held);
}

/// Lets this worker's spawned work (deferred drops, spares) run.
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// A request whose plugin watches the response, so its instance stays alive with it.
async fn watching(reg: &switchyard::plugin::PluginRegistry) -> Box<switchyard::plugin::Proceed> {
    let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&["a"])).await else {
        panic!("must proceed");
    };
    assert!(!p.watch.is_empty());
    p
}

/// Drops `held` and returns the most that free pool slots kept while the instances' drops and
/// the spares made meanwhile ran (a spare made later may take a freed warm slot again).
async fn kept_after<T>(engine: &switchyard::plugin::PluginEngine, held: Vec<T>) -> usize {
    drop(held);
    let mut most = engine.idle_resident_bytes();
    for _ in 0..4 {
        tokio::task::yield_now().await;
        most = most.max(engine.idle_resident_bytes());
    }
    most
}

#[tokio::test]
async fn instance_bound_waits_then_says_busy() {
    let dir = plugin_dir(&[("w.wasm", wasm::WATCHER)]);
    let e = entry("w", "w.wasm", FailurePolicy::Closed, json!({}));
    let reg = registry(engine(2), dir.path(), vec![e]).await;
    // Watching plugins keep their instance (and its slot) until the response is done.
    let mut held = Vec::new();
    for _ in 0..2 {
        let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&["a"])).await else {
            panic!("must proceed");
        };
        assert!(!p.watch.is_empty());
        held.push(p);
    }
    let started = Instant::now();
    let RequestOutcome::Refuse(f) = reg.current().on_request(chat(&["a"])).await else {
        panic!("third request must be refused as busy");
    };
    assert_eq!(f.kind, FailureKind::Busy);
    assert_eq!(f.http_status(), 503);
    assert!(started.elapsed() >= Duration::from_millis(45), "it waited the queue timeout first");

    // A waiting request gets the slot as soon as one is freed.
    let freed = held.pop();
    let set = reg.current();
    let waiter = tokio::spawn(async move { set.on_request(chat(&["a"])).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(freed);
    let outcome = waiter.await.expect("join");
    assert!(matches!(outcome, RequestOutcome::Proceed(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_component_that_imports_anything_but_the_host_interface_is_refused() {
    // `escape` imports an environment reader besides the plugin contract.
    let dir = plugin_dir(&[("escape.wasm", wasm::ESCAPE)]);
    let e = entry("escape", "escape.wasm", FailurePolicy::Open, json!({}));
    let reg = switchyard::plugin::PluginRegistry::new(
        engine(8),
        switchyard::plugin::PluginsSection::new(dir.path()),
        vec![e],
        upstreams(),
    );
    let error = reg.reload().await.expect_err("an import outside the host interface must not load");
    let message = error.to_string();
    assert!(message.contains("escape:ambient/env"), "the refusal names the import: {message}");
    assert!(reg.current().is_empty(), "nothing went live");
}

#[tokio::test]
async fn the_perf_map_names_plugin_functions_only_when_asked_for() {
    // wasmtime keeps one perf map per process, opened by the first engine that asks for it;
    // no other test in this file does.
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()));
    let _ = std::fs::remove_file(&map);
    let dir = plugin_dir(&[("w.wasm", wasm::WATCHER)]);
    let plain = switchyard::plugin::PluginEngine::new(switchyard_tests::test_engine_limits())
        .expect("engine");
    let reg =
        registry(plain, dir.path(), vec![entry("w", "w.wasm", FailurePolicy::Closed, json!({}))])
            .await;
    assert!(matches!(reg.current().on_request(chat(&["x"])).await, RequestOutcome::Proceed(_)));
    assert!(!map.exists(), "a perf map was written without perf_map");

    let profiled = switchyard::plugin::PluginEngine::new(switchyard::plugin::EngineLimits {
        perf_map: true,
        ..switchyard_tests::test_engine_limits()
    })
    .expect("engine");
    let reg = registry(
        profiled,
        dir.path(),
        vec![entry("w", "w.wasm", FailurePolicy::Closed, json!({}))],
    )
    .await;
    assert!(matches!(reg.current().on_request(chat(&["x"])).await, RequestOutcome::Proceed(_)));
    let text = std::fs::read_to_string(&map).expect("perf_map writes /tmp/perf-<pid>.map");
    let _ = std::fs::remove_file(&map);
    // `<address> <size> <name>`, the plugin's functions named by wasmtime.
    let named = text
        .lines()
        .filter(|l| l.split(' ').nth(2).is_some_and(|n| n.starts_with("wasm[")))
        .count();
    assert!(named > 0, "no plugin function in the perf map:\n{text}");
}
