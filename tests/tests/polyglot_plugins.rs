//! Plugins written in JavaScript (componentize-js) and Python (componentize-py), built with the
//! real toolchains (tests/src/polyglot.rs), end to end through the proxy: each sees the request
//! and its decision takes effect; the JavaScript one imports only the host interface and the
//! Python one nothing but that and WASI; every capability the Python one reaches for (a file, the
//! environment, arguments, stdin, a socket, a name lookup) fails inside the plugin while the
//! request goes on as the plugin decides; a call blocked in WASI is stopped at its wall deadline;
//! a memory cap too small for the interpreter is refused at load with the size to set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::BTreeSet;
use std::path::Path;

use http::StatusCode;
use switchyard::plugin::artifacts::ArtifactCache;
use switchyard::plugin::{FailurePolicy, PluginEngine, PluginEntry, PluginsSection, limits};
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{self, Proxy};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{TEST_POOL, chat_body, polyglot};
use tokio::sync::OnceCell;

/// Deadline of each call: generous, these tests share two busy cores with builds.
const TIMEOUT_MS: u64 = 1000;

struct Setup {
    proxy: Proxy,
    local: MockUpstream,
    _dir: tempfile::TempDir,
}

/// The `[plugins]` section every proxy and warm-up here uses (the same engine settings, so the
/// same artifact cache entries).
fn section(dir: &Path) -> PluginsSection {
    let mut section = PluginsSection::new(dir);
    section.max_instances = TEST_POOL;
    section.artifact_cache = Some(polyglot::artifact_cache());
    section
}

fn entry(name: &str, file: &str, timeout_ms: u64) -> PluginEntry {
    let mut entry = PluginEntry::new(name, file, FailurePolicy::Closed);
    entry.timeout_ms = timeout_ms;
    entry
}

/// Compiles `component` into the artifact cache once per process (through the same load path
/// as `switchyard check`), so that the tests' proxies load it instead of each compiling 12-18 MB.
async fn warm(component: &Path) {
    static JS: OnceCell<()> = OnceCell::const_new();
    static PY: OnceCell<()> = OnceCell::const_new();
    let cell = if component.ends_with("js_hello.wasm") { &JS } else { &PY };
    cell.get_or_init(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::copy(component, dir.path().join("p.wasm")).expect("copy");
        let entries = [entry("p", "p.wasm", TIMEOUT_MS)];
        switchyard::plugin::registry::check(&section(dir.path()), &entries, BTreeSet::new())
            .await
            .unwrap_or_else(|e| panic!("{} does not load: {e}", component.display()));
    })
    .await;
}

/// A proxy whose chain is the one plugin `name` (`component`), fail-closed.
async fn start(name: &str, component: &Path, timeout_ms: u64) -> Setup {
    warm(component).await;
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let file = format!("{name}.wasm");
    let table = format!(
        "[[plugin]]\nname = \"{name}\"\nfile = \"{file}\"\nfailure = \"closed\"\ntimeout_ms = {timeout_ms}\n"
    );
    let (dir, plugins) =
        harness::plugins_section(&[(file.as_str(), component.to_str().unwrap())], &table);
    let cache =
        format!("artifact_cache = {:?}\n", polyglot::artifact_cache().display().to_string());
    let plugins = plugins.replacen("[plugins]\n", &format!("[plugins]\n{cache}"), 1);
    let config = harness::config(&[("local", &local.base_url(), "")], "default = \"local\"");
    let proxy = Proxy::start(&format!("{config}\n{plugins}")).await;
    Setup { proxy, local, _dir: dir }
}

async fn chat(proxy: &Proxy, text: &str) -> Reply {
    client::post(&proxy.url("/v1/chat/completions"), &chat_body("m", text, false)).await
}

fn header(s: &Setup, index: usize, name: &str) -> String {
    let received = s.local.received();
    let headers = &received[index].headers;
    headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The hello plugin of `lang` adds its headers to a plain request and refuses one with the word.
async fn hello_decides(lang: &str, component: &Path) {
    let s = start(&format!("{lang}-hello"), component, TIMEOUT_MS).await;
    let ok = chat(&s.proxy, "hello there").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(header(&s, 0, "x-plugin-lang"), lang);
    assert_eq!(header(&s, 0, "x-plugin-saw"), "1 messages, model m");

    let refused = chat(&s.proxy, "something forbidden").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(refused.json()["error"]["message"], format!("refused by {lang}-hello"));
    assert_eq!(refused.json()["error"]["type"], "policy_violation");
    assert_eq!(s.local.received().len(), 1, "a refused request is not forwarded");
}

#[tokio::test]
async fn a_javascript_plugin_sees_the_request_and_its_decision_takes_effect() {
    hello_decides("js", &polyglot::components().js_hello).await;
}

#[tokio::test]
async fn a_python_plugin_sees_the_request_and_its_decision_takes_effect() {
    hello_decides("py", &polyglot::components().py_hello).await;
}

#[tokio::test]
async fn javascript_imports_only_the_host_and_python_only_the_host_and_wasi() {
    let c = polyglot::components();
    let engine = PluginEngine::new(section(Path::new(".")).engine_limits()).expect("engine");
    let cache = ArtifactCache::open(&polyglot::artifact_cache(), engine.engine()).expect("cache");
    let load = |path: &Path| {
        let wasm = std::fs::read(path).expect("read");
        let sha = switchyard_tests::sha256_hex(&wasm);
        cache.load_or_compile(engine.engine(), &wasm, &sha).expect("compile").0
    };
    let js = load(&c.js_hello);
    let js_imports = limits::import_names(engine.engine(), &js);
    assert!(!limits::imports_wasi(engine.engine(), &js), "{js_imports:?}");
    assert!(js_imports.iter().all(|i| i.starts_with("switchyard:plugin/")), "{js_imports:?}");

    let py = load(&c.py_hello);
    let py_imports = limits::import_names(engine.engine(), &py);
    assert!(limits::imports_wasi(engine.engine(), &py), "{py_imports:?}");
    let foreign: Vec<_> = py_imports
        .iter()
        .filter(|i| !i.starts_with("switchyard:plugin/") && !i.starts_with("wasi:"))
        .collect();
    assert!(foreign.is_empty(), "{foreign:?}");
}

/// The Python plugin tries `what` ("probe:<what>"): the attempt fails inside the plugin, which
/// catches it and lets the request go on with `x-probe: denied: <exception>`.
async fn denied(what: &str) {
    let s = start("py-hello", &polyglot::components().py_hello, TIMEOUT_MS).await;
    let reply = chat(&s.proxy, &format!("probe:{what}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let probe = header(&s, 0, "x-probe");
    assert!(probe.starts_with("denied: "), "probe {what}: {probe}");
}

#[tokio::test]
async fn a_python_plugin_cannot_open_a_file() {
    denied("file").await;
}

#[tokio::test]
async fn a_python_plugin_cannot_read_the_environment() {
    denied("env").await;
}

#[tokio::test]
async fn a_python_plugin_gets_no_arguments() {
    denied("args").await;
}

#[tokio::test]
async fn a_python_plugin_reads_nothing_from_stdin() {
    denied("stdin").await;
}

#[tokio::test]
async fn a_python_plugin_cannot_connect_a_socket() {
    denied("connect").await;
}

#[tokio::test]
async fn a_python_plugin_cannot_resolve_a_name() {
    denied("resolve").await;
}

#[tokio::test]
async fn what_a_python_plugin_prints_does_not_disturb_the_request() {
    // Its own name: the log test beside it counts the lines logged under "py-hello", and once
    // that test installs the binary's log subscriber these lines are captured too.
    let s = start("py-quiet", &polyglot::components().py_hello, TIMEOUT_MS).await;
    let reply = chat(&s.proxy, "probe:stdout").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(header(&s, 0, "x-probe"), "printed");
}

#[tokio::test]
async fn what_a_python_plugin_prints_reaches_the_log_under_its_name_within_the_line_budget() {
    let log = switchyard_tests::logs::captured(switchyard::config::LogFormat::Text);
    let s = start("py-hello", &polyglot::components().py_hello, TIMEOUT_MS).await;
    let reply = chat(&s.proxy, "probe:stdout").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let text = switchyard_tests::logs::text(log);
    let printed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("stdout line ") && l.contains("plugin=\"py-hello\""))
        .collect();
    assert!(
        printed.first().is_some_and(|l| l.contains("stdout line 0")
            && l.contains("plugin=\"py-hello\"")
            && l.contains("stream=\"stdout\"")),
        "the first printed line is logged under the plugin's name: {printed:?}"
    );
    // 1,000 lines printed at once: the burst gets through, the rest is dropped (and counted on
    // the next line that is logged).
    let burst = limits::wasi::LINE_BURST as usize;
    assert!(printed.len() <= burst + 1, "{} lines logged, burst {burst}", printed.len());
    assert!(!text.contains("stdout line 999"), "the budget held");
}

#[tokio::test]
async fn a_call_blocked_in_wasi_is_stopped_at_its_wall_deadline() {
    // 100 ms of run time: the wall deadline is 1 s, the plugin asks to sleep 60 s.
    let s = start("py-hello", &polyglot::components().py_hello, 100).await;
    let reply = chat(&s.proxy, "probe:sleep").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.text());
    assert_eq!(reply.json()["error"]["message"], "plugin py-hello failed (timeout)");
    assert!(s.local.received().is_empty(), "fail-closed: nothing forwarded");
    // The proxy goes on serving with fresh instances.
    assert_eq!(chat(&s.proxy, "hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_memory_cap_below_the_interpreter_is_refused_with_the_size_to_set() {
    let component = &polyglot::components().py_hello;
    warm(component).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(component, dir.path().join("p.wasm")).expect("copy");
    let mut small = entry("p", "p.wasm", TIMEOUT_MS);
    small.memory_mib = Some(1);
    let err = switchyard::plugin::registry::check(&section(dir.path()), &[small], BTreeSet::new())
        .await
        .expect_err("a 1 MiB cap cannot hold CPython");
    let message = err.to_string();
    assert!(message.contains("set memory_mib = "), "{message}");
    assert!(message.starts_with("plugin p: its linear memory starts at "), "{message}");
}
