//! The plugin chain end to end through the proxy, started in-process with a mock upstream that
//! records what it received: each failure kind under both policies (closed forwards nothing),
//! edits, plugin answers and routes as the upstream sees them, hot swap under load through the
//! admin API and the watched directory, and the admin API and metrics themselves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{self, Proxy};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{chat_body, sign_plugin, wasm};

const TOKEN: &str = "admin-test-token";
const TOKEN_ENV: &str = "SY_TEST_ADMIN_TOKEN";

/// A proxy with a `[plugins]` section over a fresh plugin dir, and two recording upstreams:
/// `local` (the default route) and `big`.
struct Setup {
    proxy: Proxy,
    local: MockUpstream,
    big: MockUpstream,
    dir: tempfile::TempDir,
}

/// Copies `files` (name in the dir, built component) into a temp `plugins.dir` and starts the
/// proxy. `plugins` is TOML: optional `[plugins]` keys first, then `[[plugin]]` tables.
async fn start(files: &[(&str, &str)], plugins: &str) -> Setup {
    let files: Vec<(&str, Vec<u8>)> =
        files.iter().map(|(f, c)| (*f, std::fs::read(c).expect("read component"))).collect();
    start_with(&files, plugins).await
}

/// As [`start`], with the files' bytes given.
async fn start_with(files: &[(&str, Vec<u8>)], plugins: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, bytes) in files {
        std::fs::write(dir.path().join(file), bytes).expect("write plugin file");
    }
    let section = format!("[plugins]\ndir = {:?}\n{plugins}", dir.path().display().to_string());
    let (proxy, local, big) = start_config(&section).await;
    Setup { proxy, local, big, dir }
}

async fn start_config(extra: &str) -> (Proxy, MockUpstream, MockUpstream) {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let big = MockUpstream::start("big", Behavior::Normal).await;
    let config = harness::config(
        &[("local", &local.base_url(), ""), ("big", &big.base_url(), "")],
        "default = \"local\"",
    )
    .replace("[admin]\n", &format!("[admin]\ntoken_env = \"{TOKEN_ENV}\"\n"));
    let env = HashMap::from([(TOKEN_ENV.to_string(), TOKEN.to_string())]);
    let proxy = Proxy::start_with_env(&format!("{config}\n{extra}"), env).await;
    (proxy, local, big)
}

/// One `[[plugin]]` table.
fn plugin(name: &str, file: &str, failure: &str, timeout_ms: u64, config: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\nfile = \"{file}\"\nfailure = \"{failure}\"\n\
         timeout_ms = {timeout_ms}\nconfig = {config}\n"
    )
}

/// An admin call; `token: None` sends no `authorization` header.
async fn admin(
    proxy: &Proxy,
    method: &str,
    path: &str,
    body: Vec<u8>,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder().method(method).uri(proxy.admin_url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    client::read(client::send(request).await).await
}

async fn list_plugins(proxy: &Proxy) -> Value {
    let reply = admin(proxy, "GET", "/admin/plugins", Vec::new(), Some(TOKEN), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()
}

async fn put_plugin(proxy: &Proxy, name: &str, wasm: Vec<u8>) -> Reply {
    admin(proxy, "PUT", &format!("/admin/plugins/{name}"), wasm, Some(TOKEN), &[]).await
}

fn assert_refused_by(reply: &Reply, plugin: &str, kind: &str) {
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.text());
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "plugin_failed");
    assert_eq!(error["type"], "server_error");
    let message = error["message"].as_str().unwrap_or_default();
    assert_eq!(message, format!("plugin {plugin} failed ({kind})"));
}

/// Each fault plugin, as `(file, component, config, failure kind label)`. The deadline is short
/// for the loop and generous for the others (these tests share two busy cores).
const FAULTS: [(&str, &str, &str, &str); 4] = [
    ("busy_loop.wasm", wasm::BUSY_LOOP, "{}", "timeout"),
    ("memory_bomb.wasm", wasm::MEMORY_BOMB, "{}", "memory"),
    ("trap.wasm", wasm::TRAP, "{}", "trap"),
    ("garbage.wasm", wasm::GARBAGE, "{ kind = \"out-of-bounds\" }", "invalid_decision"),
];

fn timeout_for(kind: &str) -> u64 {
    if kind == "timeout" { 20 } else { 500 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_kind_fail_closed_refuses_and_forwards_nothing() {
    for (file, component, config, kind) in FAULTS {
        let s = start(
            &[(file, component)],
            &plugin("guard", file, "closed", timeout_for(kind), config),
        )
        .await;
        let reply =
            client::post(&s.proxy.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
        assert_refused_by(&reply, "guard", kind);
        assert_eq!(reply.header("x-switchyard-upstream"), "none");
        let stream =
            client::post(&s.proxy.url("/v1/chat/completions"), &chat_body("m", "hi", true)).await;
        assert_refused_by(&stream, "guard", kind);
        assert_eq!(s.local.hits() + s.big.hits(), 0, "{kind}: fail-closed forwarded a request");
        s.proxy.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_kind_fail_open_forwards_unchanged_and_is_counted() {
    let files: Vec<(&str, &str)> = FAULTS.iter().map(|f| (f.0, f.1)).collect();
    let chain: String = FAULTS
        .iter()
        .map(|(file, _, config, kind)| plugin(kind, file, "open", timeout_for(kind), config))
        .collect();
    let s = start(&files, &chain).await;
    let body = chat_body("m", "héllo, fail-open", false);
    let reply = client::post(&s.proxy.url("/v1/chat/completions"), &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let received = s.local.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body.as_bytes(), "fail-open forwards the request byte for byte");

    // The admin API and the metrics show one call and one failure of its own kind per plugin.
    let listed = list_plugins(&s.proxy).await;
    let plugins = listed["plugins"].as_array().expect("plugins");
    assert_eq!(plugins.len(), 4);
    for (p, (_, _, _, kind)) in plugins.iter().zip(FAULTS) {
        assert_eq!(p["name"], kind);
        assert_eq!(p["failure"], "open");
        assert_eq!(p["failures"], 1, "{p}");
        assert_eq!(p["failures_by_kind"][kind], 1, "{p}");
        assert!(p["calls"].as_u64().unwrap_or(0) >= 1, "{p}");
        assert_eq!(p["sha256"].as_str().map(str::len), Some(64));
        assert!(p["p99_us"].as_f64().is_some(), "{p}");
    }
    let metrics = client::get(&s.proxy.admin_url("/metrics")).await.text();
    for (_, _, _, kind) in FAULTS {
        let line =
            format!("switchyard_plugin_failures_total{{plugin=\"{kind}\",kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
        assert!(metrics.contains(&format!("switchyard_plugin_calls_total{{plugin=\"{kind}\"}}")));
        assert!(metrics.contains(&format!(
            "switchyard_plugin_call_seconds{{plugin=\"{kind}\",quantile=\"0.99\"}}"
        )));
    }
    assert!(metrics.contains("switchyard_plugin_instances_free 256"), "{metrics}");
    assert!(metrics.contains("switchyard_plugin_instances_max 256"), "{metrics}");
    s.proxy.stop().await;
}

/// Plugin slots in use, from the admin listener's /metrics.
async fn instances_in_use(proxy: &Proxy) -> i64 {
    let text = client::get(&proxy.admin_url("/metrics")).await.text();
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<i64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    gauge("switchyard_plugin_instances_max") - gauge("switchyard_plugin_instances_free")
}

#[tokio::test] // one thread: the proxy's only worker, the clients and the upstream share it
async fn a_plugin_running_to_its_deadline_never_stalls_its_worker() {
    // One worker serves the API and the admin listener. The looper spins on requests that say
    // "spin" for 1 s of its own run time; while it does, the same worker answers /metrics and a
    // plain request. A plugin call that kept the worker's event loop (as before plugin calls
    // yielded at each epoch tick) would let neither through until the spinner had failed.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(wasm::BUSY_LOOP, dir.path().join("loop.wasm")).expect("copy plugin");
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let config = harness::config(&[("local", &local.base_url(), "")], "default = \"local\"")
        .replace("[server]\n", "[server]\nworkers = 1\n");
    let plugins = plugin("looper", "loop.wasm", "closed", 1000, "{ trigger = \"spin\" }");
    let section = format!("[plugins]\ndir = {:?}\n{plugins}", dir.path().display().to_string());
    let proxy = Proxy::start(&format!("{config}\n{section}")).await;
    let url = proxy.url("/v1/chat/completions");

    let spinner = {
        let url = url.clone();
        tokio::spawn(async move { client::post(&url, &chat_body("m", "spin please", false)).await })
    };
    // The spinner holds an instance once its plugin call has begun.
    while instances_in_use(&proxy).await == 0 {
        assert!(!spinner.is_finished(), "the spinner ended before its plugin ran");
        tokio::task::yield_now().await;
    }
    let plain = client::post(&url, &chat_body("m", "just a question", false)).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert!(!spinner.is_finished(), "the plain request waited for the spinning plugin");
    assert_refused_by(&spinner.await.expect("spinner"), "looper", "timeout");
    assert_eq!(local.hits(), 1, "only the plain request went upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_keeps_serving_while_a_plugin_loops() {
    // Loops (until its 50 ms deadline) only on requests that say "spin".
    let config = "{ trigger = \"spin\" }";
    let s = start(
        &[("loop.wasm", wasm::BUSY_LOOP)],
        &plugin("looper", "loop.wasm", "closed", 50, config),
    )
    .await;
    let url = s.proxy.url("/v1/chat/completions");
    // Counted, not timed: each spinner sends three looping requests (each must be stopped by its
    // deadline), and the others keep sending plain ones until every spinner is done. The strict
    // "never stalls its worker" property is the event-ordered test below; this one is about
    // repeated loops across workers.
    let spinning = Arc::new(AtomicUsize::new(3));
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let (url, spinning) = (url.clone(), spinning.clone());
            tokio::spawn(async move {
                for _ in 0..3 {
                    let reply = client::post(&url, &chat_body("m", "spin please", false)).await;
                    assert_refused_by(&reply, "looper", "timeout");
                }
                spinning.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    let others: Vec<_> = (0..4)
        .map(|_| {
            let (url, spinning) = (url.clone(), spinning.clone());
            tokio::spawn(async move {
                let (mut n, mut during) = (0, 0);
                loop {
                    let reply = client::post(&url, &chat_body("m", "just a question", false)).await;
                    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
                    n += 1;
                    if spinning.load(Ordering::SeqCst) == 0 {
                        return (n, during);
                    }
                    during += 1;
                }
            })
        })
        .collect();
    for t in spinners {
        t.await.expect("spinner");
    }
    let (mut served, mut during) = (0, 0);
    for t in others {
        let (n, d) = t.await.expect("other");
        served += n;
        during += d;
    }
    eprintln!("looping requests refused: 9; others served: {served}, {during} while loops ran");
    assert!(during >= 1, "no plain request finished while the plugins looped");
    assert_eq!(s.local.hits(), served, "looping requests were never forwarded");
    s.proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_answers_and_routes_reach_the_right_place() {
    let config = "{ mask_digits = true, blocked_words = [\"forbidden\"], \
                  long_upstream = \"big\", long_chars = 200 }";
    let s = start(
        &[("template.wasm", wasm::TEMPLATE)],
        &plugin("template", "template.wasm", "closed", 500, config),
    )
    .await;
    let url = s.proxy.url("/v1/chat/completions");

    // Edited: the upstream sees the masked text, every other field as sent.
    let body = json!({"model": "m", "temperature": 0.5, "user": "u-1",
        "messages": [{"role": "system", "content": "digits 42 stay"},
                     {"role": "user", "content": "my pin is 1234, ok?"}]});
    let reply = client::post(&url, &body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = s.local.received()[0].json();
    assert_eq!(seen["messages"][1]["content"], "my pin is ####, ok?");
    assert_eq!(seen["messages"][0]["content"], "digits 42 stay", "only user messages are masked");
    assert_eq!(
        (&seen["model"], &seen["temperature"], &seen["user"]),
        (&json!("m"), &json!(0.5), &json!("u-1"))
    );

    // Unedited: byte for byte what the client sent.
    let plain =
        "{\"model\":\"m\",  \"messages\":[{\"role\":\"user\",\"content\":\"no numbers here\"}]}";
    let reply = client::post(&url, plain).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(s.local.received()[1].body, plain.as_bytes());

    // A plugin's answer reaches the client and nothing reaches an upstream.
    let reply = client::post(&url, &chat_body("m", "something forbidden", false)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.json()["error"]["type"], "policy_violation");
    assert_eq!(reply.json()["error"]["message"], "this request is not allowed");
    assert_eq!(reply.header("x-switchyard-upstream"), "none");
    assert_eq!((s.local.hits(), s.big.hits()), (2, 0));

    // A route decision sends the request to the named upstream.
    let long = "please summarise this. ".repeat(20);
    let reply = client::post(&url, &chat_body("m", &long, false)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "big");
    assert_eq!((s.local.hits(), s.big.hits()), (2, 1));
    assert_eq!(s.big.received()[0].json()["messages"][0]["content"], long.as_str());
    s.proxy.stop().await;
}

/// Concurrent request tasks during the swaps: hundreds in flight.
const TASKS: usize = 200;
/// What the issue asks: a swap goes live within 200 ms of the change.
const SWAP_GOAL: Duration = Duration::from_millis(200);
/// What this test enforces: a debug build on two cores shared with other builds is slower than the
/// goal at times; the measured times are printed, and BENCHMARKS.md reports them.
const SWAP_BOUND: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_through_the_admin_api_and_the_watched_dir() {
    let s = start_with(
        &[("ver.wasm", wasm::stamped(1))],
        &format!("watch = true\n{}", plugin("ver", "ver.wasm", "closed", 500, "{}")),
    )
    .await;
    let (proxy, local) = (&s.proxy, &s.local);

    let http = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let stop = Arc::new(AtomicBool::new(false));
    let url = proxy.url("/v1/chat/completions");
    let workers: Vec<_> = (0..TASKS)
        .map(|task| {
            let (http, stop, url) = (http.clone(), Arc::clone(&stop), url.clone());
            tokio::spawn(async move {
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let body = chat_body("m", &format!("t{task}-{sent}"), false);
                    let request = Request::post(&url)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body)))
                        .expect("request");
                    let reply = client::read(http.request(request).await.expect("send")).await;
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "failed during a swap: {}",
                        reply.text()
                    );
                    sent += 1;
                }
                sent
            })
        })
        .collect();

    let mut live_times = Vec::new();
    let mut current = 1;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (next, how) in [(2, "put"), (0, "broken"), (3, "file"), (4, "put"), (5, "file"), (6, "put")]
    {
        let started = Instant::now();
        match how {
            "broken" => {
                let reply =
                    put_plugin(proxy, "ver", b"\0asm not really a component".to_vec()).await;
                assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
                let error = &reply.json()["error"];
                assert_eq!(error["param"], "ver");
                assert_eq!(error["code"], "plugin_rejected");
                let message = error["message"].as_str().unwrap_or_default();
                assert!(message.contains("plugin ver") && message.contains("compile"), "{message}");
                continue;
            }
            "put" => {
                let reply = put_plugin(proxy, "ver", wasm::stamped(next)).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
                assert_eq!(reply.json()["compiled"], json!(["ver"]));
            }
            _ => {
                let before = list_plugins(proxy).await["plugins"][0]["sha256"].clone();
                let tmp = s.dir.path().join("ver.upload");
                std::fs::write(&tmp, wasm::stamped(next)).expect("write");
                let started = Instant::now();
                std::fs::rename(&tmp, s.dir.path().join("ver.wasm")).expect("rename");
                while list_plugins(proxy).await["plugins"][0]["sha256"] == before {
                    assert!(started.elapsed() < Duration::from_secs(10), "watcher did not swap");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                live_times.push((how, started.elapsed()));
            }
        }
        if how == "put" {
            live_times.push((how, started.elapsed()));
        }
        // Live means the next request through the proxy carries the new version.
        let mark = local.hits();
        let reply = client::post(&url, &chat_body("m", "probe-after-swap", false)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let version = local
            .received_from(mark)
            .into_iter()
            .find(|r| r.json()["messages"][0]["content"] == "probe-after-swap")
            .and_then(|r| r.headers.get("x-plugin-version").cloned())
            .expect("the probe reached the upstream with a version");
        assert_eq!(version, wasm::stamp_name(next).as_str(), "swap {current} -> {next} ({how})");
        current = next;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }

    // Every request reached the upstream once, with exactly one version, never going backwards.
    let received = local.received();
    let mut per_task: BTreeMap<usize, Vec<(usize, u16)>> = BTreeMap::new();
    for r in &received {
        let versions: Vec<_> = r.headers.get_all("x-plugin-version").iter().collect();
        assert_eq!(versions.len(), 1, "one version per request");
        let version = versions[0].to_str().expect("ascii");
        let stamp: u16 = version
            .strip_prefix("switchyard-stamp-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unknown version {version}"));
        assert!((1..=6).contains(&stamp), "{version}");
        let text = r.json()["messages"][0]["content"].as_str().unwrap_or_default().to_string();
        if let Some((task, seq)) = text.strip_prefix('t').and_then(|t| t.split_once('-')) {
            let (task, seq) = (task.parse().expect("task"), seq.parse().expect("seq"));
            per_task.entry(task).or_default().push((seq, stamp));
        }
    }
    let forwarded: usize = per_task.values().map(Vec::len).sum();
    assert_eq!(forwarded, total, "each load request was forwarded exactly once");
    let mut seen = std::collections::BTreeSet::new();
    for (task, mut stamps) in per_task {
        stamps.sort();
        seen.extend(stamps.iter().map(|s| s.1));
        for pair in stamps.windows(2) {
            assert!(pair[0].1 <= pair[1].1, "task {task} went back a version: {pair:?}");
        }
    }
    assert!(seen.len() >= 4, "load overlapped the swaps: {seen:?}");
    assert!(!seen.contains(&0), "the refused upload never served");
    eprintln!("{total} requests during 5 swaps + 1 refused upload; time to live: {live_times:?}");
    for (how, took) in &live_times {
        if *took > SWAP_GOAL {
            eprintln!("note: a {how} swap took {took:?}, over the {SWAP_GOAL:?} goal");
        }
        assert!(*took < SWAP_BOUND, "{how} swap took {took:?}");
    }
    s.proxy.stop().await;
}

#[tokio::test]
async fn admin_api_needs_the_token_and_reports_refusals() {
    let s = start(
        &[("ver.wasm", wasm::VERSIONED)],
        &format!(
            "watch = false\n{}",
            plugin("ver", "ver.wasm", "closed", 500, "{ version = \"v1\" }")
        ),
    )
    .await;
    let p = &s.proxy;
    for (method, path) in
        [("GET", "/admin/plugins"), ("POST", "/admin/reload"), ("PUT", "/admin/plugins/ver")]
    {
        for token in [None, Some("wrong")] {
            let reply = admin(p, method, path, b"x".to_vec(), token, &[]).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} {token:?}");
            assert_eq!(reply.json()["error"]["type"], "authentication_error");
        }
    }
    let reply = admin(p, "GET", "/admin/reload", Vec::new(), Some(TOKEN), &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = put_plugin(p, "nope", std::fs::read(wasm::NOOP).expect("read")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "unknown_plugin");

    // A good reload answers its report.
    let reply = admin(p, "POST", "/admin/reload", Vec::new(), Some(TOKEN), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["plugins"], json!(["ver"]));
    assert_eq!(reply.json()["compiled"], json!([]), "unchanged bytes are not compiled again");
    let before = list_plugins(p).await;
    assert_eq!(before["generation"], 2);

    // A broken file in plugins.dir: the reload is refused with a 422 naming the plugin, and the old
    // version keeps serving.
    std::fs::write(s.dir.path().join("ver.wasm"), b"garbage").expect("write");
    let reply = admin(p, "POST", "/admin/reload", Vec::new(), Some(TOKEN), &[]).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert_eq!(reply.json()["error"]["param"], "ver");
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    let after = list_plugins(p).await;
    assert_eq!(after["generation"], 2);
    assert_eq!(after["plugins"][0]["sha256"], before["plugins"][0]["sha256"]);
    let reply = client::post(&p.url("/v1/chat/completions"), &chat_body("m", "hi", false)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(s.local.received()[0].headers["x-plugin-version"], "v1");
    let plugins = list_plugins(p).await;
    assert_eq!(plugins["plugins"][0]["failures"], 0);
    assert!(plugins["plugins"][0]["calls"].as_u64().unwrap_or(0) >= 1);
    s.proxy.stop().await;
}

#[tokio::test]
async fn uploads_carry_their_signature_in_a_header() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let noop = std::fs::read(wasm::NOOP).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("n.wasm"), &noop).expect("write");
    std::fs::write(dir.path().join("n.wasm.sig"), sign_plugin(&key, "n", 1, &noop))
        .expect("write sig");
    let section = format!(
        "[plugins]\ndir = {:?}\nwatch = false\ntrusted_keys = [\"{}\"]\n{}",
        dir.path().display().to_string(),
        b64.encode(key.verifying_key().to_bytes()),
        plugin("n", "n.wasm", "closed", 500, "{}")
    );
    let (proxy, _local, _big) = start_config(&section).await;
    let ver = wasm::stamped(7);

    let reply = put_plugin(&proxy, "n", ver.clone()).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert!(reply.json()["error"]["message"].as_str().unwrap_or("").contains("signature"));

    // Signed for another plugin name: refused, though the key and bytes are right.
    let elsewhere = sign_plugin(&key, "other", 2, &ver);
    let headers = [("x-switchyard-signature", elsewhere.as_str())];
    let reply = admin(&proxy, "PUT", "/admin/plugins/n", ver.clone(), Some(TOKEN), &headers).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert!(reply.text().contains("not `n`"), "{}", reply.text());

    let signature = sign_plugin(&key, "n", 2, &ver);
    let headers = [("x-switchyard-signature", signature.as_str())];
    let reply = admin(&proxy, "PUT", "/admin/plugins/n", ver.clone(), Some(TOKEN), &headers).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(std::fs::read(dir.path().join("n.wasm")).expect("read"), ver);
    assert_eq!(std::fs::read(dir.path().join("n.wasm.sig")).expect("read"), signature.as_bytes());

    // Version 1 (the original bytes, validly signed) ran before version 2: a rollback.
    let old = sign_plugin(&key, "n", 1, &noop);
    let headers = [("x-switchyard-signature", old.as_str())];
    let reply = admin(&proxy, "PUT", "/admin/plugins/n", noop.clone(), Some(TOKEN), &headers).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.text());
    assert!(reply.text().contains("rollback"), "{}", reply.text());
    assert_eq!(std::fs::read(dir.path().join("n.wasm")).expect("read"), ver, "file untouched");
    proxy.stop().await;
}

#[tokio::test]
async fn plugin_endpoints_say_how_to_enable_plugins() {
    let (proxy, _local, _big) = start_config("").await;
    let reply = admin(&proxy, "GET", "/admin/plugins", Vec::new(), None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "the token is checked first");
    for (method, path) in
        [("GET", "/admin/plugins"), ("POST", "/admin/reload"), ("PUT", "/admin/plugins/x")]
    {
        let reply = admin(&proxy, method, path, b"x".to_vec(), Some(TOKEN), &[]).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "plugins_not_configured");
        assert!(error["message"].as_str().unwrap_or("").contains("[plugins]"), "{error}");
    }
    let metrics = client::get(&proxy.admin_url("/metrics")).await.text();
    assert!(!metrics.contains("switchyard_plugin_"), "no plugin metrics without plugins");
    proxy.stop().await;
}
