//! Hot swap: many requests in flight while the plugin set is swapped several times (one of the
//! swaps broken): none fails, and each sees exactly one version. A plugin that fails to compile,
//! fails its probe, or lacks a trusted signature never goes live, and the old one keeps serving.

mod plugin_support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use plugin_support::*;
use serde_json::json;
use switchyard::plugin::{
    FailurePolicy, LoadError, PluginRegistry, PluginsSection, RequestOutcome,
};
use switchyard_tests::{sign_plugin, wasm};

/// Concurrent request tasks during the swaps, and requests each: hundreds in flight.
const TASKS: usize = 200;
const PER_TASK: usize = 10;

fn versioned(version: &str) -> switchyard::plugin::PluginEntry {
    let mut e = entry("ver", "ver.wasm", FailurePolicy::Closed, json!({ "version": version }));
    // The longest deadline allowed: this test is about swaps, not deadlines, and hundreds of
    // requests share two busy cores here.
    e.timeout_ms = switchyard::plugin::limits::MAX_TIMEOUT_MS;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_drop_nothing_and_each_request_sees_one_version() {
    let dir = plugin_dir(&[("ver.wasm", wasm::VERSIONED), ("broken.wasm", wasm::TRAP)]);
    // Requests wait for a free instance as long as it takes: this test is about swaps, and the
    // 50 ms queue limit of `engine()` turned a slow moment on a shared 2-core host into `busy`.
    let patient = switchyard::plugin::PluginEngine::new(switchyard::plugin::EngineLimits {
        max_instances: 64,
        queue_timeout: Duration::from_secs(120),
        ..switchyard_tests::test_engine_limits()
    })
    .expect("engine");
    let reg = registry(patient, dir.path(), vec![versioned("v1")]).await;

    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let reg = Arc::clone(&reg);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..PER_TASK {
                    match reg.current().on_request(chat(&["hello"])).await {
                        RequestOutcome::Proceed(p) => {
                            let v = tag(&p.request, "version").map(str::to_string);
                            let header =
                                p.add_headers.iter().find(|(k, _)| k == "x-plugin-version");
                            assert_eq!(
                                v.as_deref(),
                                header.map(|(_, v)| v.as_str()),
                                "one version per request"
                            );
                            seen.push(v.unwrap_or_default());
                        }
                        other => panic!("request failed during swap: {other:?}"),
                    }
                    tokio::task::yield_now().await;
                }
                seen
            })
        })
        .collect();

    let section = PluginsSection::new(dir.path());
    for (i, version) in ["v2", "broken", "v3", "v4"].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let entries = if version == "broken" {
            // A plugin that traps in init: it must be refused at the probe.
            vec![entry("ver", "broken.wasm", FailurePolicy::Closed, json!({ "in": "init" }))]
        } else {
            vec![versioned(version)]
        };
        let result = reg.reconfigure(section.clone(), entries, upstreams()).await;
        if version == "broken" {
            assert!(matches!(result, Err(LoadError::Probe { .. })), "swap {i}: {result:?}");
        } else {
            result.expect("swap");
        }
    }

    let mut total = 0;
    let mut versions = std::collections::BTreeSet::new();
    for w in workers {
        let seen = w.await.expect("worker");
        total += seen.len();
        versions.extend(seen.iter().cloned());
        let order = |v: &str| ["v1", "v2", "v3", "v4"].iter().position(|x| *x == v);
        for pair in seen.windows(2) {
            let (a, b) = (order(&pair[0]), order(&pair[1]));
            assert!(
                a.is_some() && b.is_some() && a <= b,
                "versions went backwards or unknown: {pair:?}"
            );
        }
    }
    assert_eq!(total, TASKS * PER_TASK);
    assert!(versions.len() >= 2, "requests overlapped the swaps: {versions:?}");
    let info = reg.list();
    // Stats belong to the name across versions: the broken version's failed probe is counted
    // (and logged), no request ever failed.
    assert_eq!(info[0].failures, 1);
    assert_eq!(reg.current().generation, 4, "initial load + 3 good swaps");
}

#[tokio::test]
async fn broken_uploads_never_go_live() {
    let dir = plugin_dir(&[("ver.wasm", wasm::VERSIONED)]);
    let reg = registry(engine(8), dir.path(), vec![versioned("v1")]).await;
    let before = reg.list()[0].sha256.clone();

    // Not wasm at all.
    let err = reg.install("ver", b"not a component".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    // Compiles, but traps in init (the config asks it to; the versioned plugin ignores the key).
    let mut trap_entry = versioned("v1");
    trap_entry.config.insert("in".into(), json!("init"));
    reg.reconfigure(PluginsSection::new(dir.path()), vec![trap_entry], upstreams())
        .await
        .expect("versioned.wasm with an extra config key still loads");
    let trap = std::fs::read(wasm::TRAP).unwrap();
    let err = reg.install("ver", trap, None).await.unwrap_err();
    assert!(matches!(err, LoadError::Probe { .. }), "{err}");

    // The file on disk and the live set are unchanged.
    assert_eq!(
        std::fs::read(dir.path().join("ver.wasm")).unwrap(),
        std::fs::read(wasm::VERSIONED).unwrap()
    );
    assert_eq!(reg.list()[0].sha256, before);
    let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&["x"])).await else {
        panic!("old plugin must keep serving");
    };
    assert_eq!(tag(&p.request, "version"), Some("v1"));

    // A good upload goes live and is written to the plugin dir.
    let noop = std::fs::read(wasm::NOOP).unwrap();
    let report = reg.install("ver", noop.clone(), None).await.expect("install noop");
    assert_eq!(report.compiled, vec!["ver".to_string()]);
    assert_ne!(reg.list()[0].sha256, before);
    assert_eq!(std::fs::read(dir.path().join("ver.wasm")).unwrap(), noop);
}

#[tokio::test]
async fn probe_failing_plugin_is_refused() {
    let dir = plugin_dir(&[("loop.wasm", wasm::BUSY_LOOP)]);
    let mut e = entry("loop", "loop.wasm", FailurePolicy::Open, json!({ "on_probe": true }));
    e.timeout_ms = 5;
    let reg = PluginRegistry::new(engine(8), PluginsSection::new(dir.path()), vec![e], upstreams());
    let err = reg.reload().await.unwrap_err();
    assert!(matches!(&err, LoadError::Probe { plugin, .. } if plugin == "loop"), "{err}");
    assert!(reg.current().is_empty(), "nothing went live");
    // A missed deadline is tried again (a loaded host), three calls in all, then refused.
    let timeouts = reg.stats("loop").map(|s| s.failures_by_kind()[0]);
    assert_eq!(timeouts, Some(("timeout", 3)));
}

#[tokio::test]
async fn signatures_are_required_when_trusted_keys_are_set() {
    let dir = plugin_dir(&[("noop.wasm", wasm::NOOP)]);
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut section = PluginsSection::new(dir.path());
    section.trusted_keys = vec![b64.encode(key.verifying_key().to_bytes())];
    let e = entry("noop", "noop.wasm", FailurePolicy::Closed, json!({}));
    let reg = PluginRegistry::new(engine(8), section, vec![e], upstreams());

    let err = reg.reload().await.unwrap_err();
    assert!(matches!(err, LoadError::Signature { .. }), "unsigned: {err}");

    let wasm_bytes = std::fs::read(dir.path().join("noop.wasm")).unwrap();
    let sig_path = dir.path().join("noop.wasm.sig");
    std::fs::write(&sig_path, sign_plugin(&other, "noop", 1, &wasm_bytes)).unwrap();
    let err = reg.reload().await.unwrap_err();
    assert!(matches!(err, LoadError::Signature { .. }), "untrusted signer: {err}");

    // A bare signature over the bytes (the old format) binds no name or version: refused.
    std::fs::write(&sig_path, b64.encode(key.sign(&wasm_bytes).to_bytes())).unwrap();
    let err = reg.reload().await.unwrap_err();
    assert!(matches!(err, LoadError::Signature { .. }), "bare signature: {err}");

    std::fs::write(&sig_path, sign_plugin(&key, "noop", 1, &wasm_bytes)).unwrap();
    reg.reload().await.expect("signed plugin loads");
    assert_eq!(reg.list().len(), 1);

    // An upload needs its signature too.
    let noop = std::fs::read(wasm::NOOP).unwrap();
    let err = reg.install("noop", noop.clone(), None).await.unwrap_err();
    assert!(matches!(err, LoadError::Signature { .. }), "{err}");
    let sig = sign_plugin(&key, "noop", 2, &noop).into_bytes();
    reg.install("noop", noop.clone(), Some(sig)).await.expect("signed upload");

    // Version 2 ran: version 1 is a rollback, and version 2 cannot be reused for other bytes.
    let v1 = sign_plugin(&key, "noop", 1, &wasm_bytes).into_bytes();
    let err = reg.install("noop", wasm_bytes.clone(), Some(v1)).await.unwrap_err();
    assert!(err.to_string().contains("rollback"), "{err}");
    let mut other_bytes = noop;
    other_bytes.extend_from_slice(b"\0");
    let reused = sign_plugin(&key, "noop", 2, &other_bytes).into_bytes();
    let err = reg.install("noop", other_bytes, Some(reused)).await.unwrap_err();
    assert!(err.to_string().contains("already signed"), "{err}");
}

#[tokio::test]
async fn a_changed_file_in_the_watched_dir_goes_live() {
    let dir = plugin_dir(&[("ver.wasm", wasm::VERSIONED)]);
    let reg = registry(engine(8), dir.path(), vec![versioned("v1")]).await;
    let _watcher =
        switchyard::plugin::DirWatcher::start(Arc::clone(&reg), dir.path()).expect("watch");
    let before = reg.current().generation;
    let tmp = dir.path().join("ver.tmp");
    std::fs::copy(wasm::NOOP, &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("ver.wasm")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reg.current().generation == before {
        assert!(std::time::Instant::now() < deadline, "watcher did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let RequestOutcome::Proceed(p) = reg.current().on_request(chat(&["x"])).await else {
        panic!("noop must proceed");
    };
    assert_eq!(tag(&p.request, "version"), None, "the noop plugin is live now");
}

/// A new version of a plugin (new bytes: a custom section added, the same functions) is compiled
/// from the functions the first version left in the compiled-function cache
/// (`<artifact_cache>/functions`), and serves.
#[tokio::test]
async fn a_new_version_reuses_the_compiled_functions_of_the_old_one() {
    let dir = plugin_dir(&[("ver.wasm", wasm::VERSIONED)]);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut section = PluginsSection::new(dir.path());
    section.artifact_cache = Some(cache.path().to_path_buf());
    let limits = switchyard::plugin::EngineLimits {
        max_instances: switchyard_tests::TEST_POOL,
        ..section.engine_limits()
    };
    let engine = switchyard::plugin::PluginEngine::new(limits).expect("engine");
    let reg = PluginRegistry::new(Arc::clone(&engine), section, vec![versioned("v1")], upstreams());
    reg.reload().await.expect("load");
    let functions = engine.function_cache().expect("a function cache beside the artifacts");
    let first = functions.stats();
    assert!(first.stored > 0, "the first compile stores its functions: {first:?}");

    // A custom section (id 0) named "note" holding "v2": new bytes, new sha256, same code.
    let mut rebuilt = std::fs::read(wasm::VERSIONED).expect("read");
    rebuilt.extend_from_slice(&[0, 7, 4, b'n', b'o', b't', b'e', b'v', b'2']);
    reg.install("ver", rebuilt, None).await.expect("install the new version");
    let second = functions.stats();
    let (reused, compiled) = (second.hits - first.hits, second.stored - first.stored);
    // Most, not all: some functions miss the cache on every compile (0 of about 200 alone, up
    // to 28 with the other tests of this file running beside it; about 4 % of a JavaScript
    // plugin's in BENCHMARKS.md), which costs time, never correctness.
    assert!(
        reused > 2 * compiled,
        "the new version's functions come from the cache: {reused} reused, {compiled} compiled"
    );
    match reg.current().on_request(chat(&["hello"])).await {
        RequestOutcome::Proceed(p) => assert_eq!(tag(&p.request, "version"), Some("v1")),
        other => panic!("the new version does not serve: {other:?}"),
    }
}
