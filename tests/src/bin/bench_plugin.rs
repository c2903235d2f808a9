//! Benchmark: plugin call cost (the request phase on a ~2 KB chat body: a ready instance or a new
//! one, `on-request`, the decision's checks) against the same logic in native Rust, the work done
//! off the request path per call (spare instances, dropping used ones), and hot-swap time-to-live
//! (compile + probe + swap). Prints a Markdown table for BENCHMARKS.md.
//!
//! Run: `scripts/bench-plugins.sh [CALLS [KEEP_RESIDENT_KIB]]`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use switchyard::plugin::{
    EngineLimits, FailurePolicy, LlmRequest, PluginEngine, PluginEntry, PluginRegistry,
    PluginsSection,
};
use switchyard_tests::chain_timing::{Timing, chat_2kb, sample_chain, summarize};
use switchyard_tests::wasm;

fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let keep_kib: Option<usize> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    KEEP_RESIDENT.store(
        keep_kib.map_or(EngineLimits::default().keep_resident_bytes, |k| k << 10),
        std::sync::atomic::Ordering::Relaxed,
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(calls))
}

async fn run(calls: usize) -> anyhow::Result<()> {
    let req = chat_2kb();
    let body_bytes: usize = req.messages.iter().map(|m| m.content.len()).sum();
    println!(
        "request text: {body_bytes} bytes in {} messages; {calls} calls each; keep_resident {} KiB\n",
        req.messages.len(),
        KEEP_RESIDENT.load(std::sync::atomic::Ordering::Relaxed) >> 10
    );
    println!("| case | median µs | p99 µs | all work per call, mean µs |");
    println!("|---|---|---|---|");

    let native = time(calls, || {
        let r = black_box(req.clone());
        black_box(native_template(&r));
    });
    row("native Rust: clone request + same logic as `template`", &native);

    let empty = switchyard::plugin::PluginSet::empty(BTreeSet::new());
    let mut samples = Vec::with_capacity(calls);
    let all = Instant::now();
    for _ in 0..calls {
        let r = req.clone();
        let t = Instant::now();
        black_box(empty.on_request(r).await);
        samples.push(t.elapsed());
    }
    row("no plugins: empty chain (clone request + outcome)", &summarize(samples, all.elapsed()));

    for (name, component, config) in [
        ("noop", wasm::NOOP, serde_json::json!({})),
        (
            "template",
            wasm::TEMPLATE,
            serde_json::json!({ "blocked_words": ["forbidden"], "long_upstream": "big", "mask_digits": true }),
        ),
    ] {
        let dir = tempfile::tempdir()?;
        std::fs::copy(component, dir.path().join("p.wasm"))?;
        let reg = registry(dir.path(), name, config).await?;
        let samples = sample_chain(&reg, &req, 200, calls).await?;
        row(&format!("plugin `{name}` (fresh), chain of 1"), &samples);
    }

    // The built-ins with the config of the repository's switchyard.toml: each alone, then the
    // whole default chain as the quick start runs it.
    let chain = default_chain()?;
    let dir = tempfile::tempdir()?;
    for (file, built) in wasm::BUILT_IN {
        std::fs::copy(built, dir.path().join(file))?;
    }
    for entry in &chain {
        let reg = registry_of(dir.path(), vec![entry.clone()]).await?;
        let samples = sample_chain(&reg, &req, 200, calls).await?;
        row(&format!("built-in `{}` (switchyard.toml config), chain of 1", entry.name), &samples);
    }
    let reg = registry_of(dir.path(), chain).await?;
    let samples = sample_chain(&reg, &req, 200, calls).await?;
    row("default chain: pii-redact → tier-router → cache-policy", &samples);

    // Hot swap: alternate two different components so every install compiles.
    let dir = tempfile::tempdir()?;
    std::fs::copy(wasm::NOOP, dir.path().join("p.wasm"))?;
    let reg = registry(dir.path(), "swap", serde_json::json!({})).await?;
    let files = [std::fs::read(wasm::TEMPLATE)?, std::fs::read(wasm::NOOP)?];
    let mut swaps = Vec::new();
    for i in 0..6 {
        let t = Instant::now();
        reg.install("swap", files[i % 2].clone(), None).await?;
        swaps.push(t.elapsed());
    }
    println!();
    println!("| hot swap (install: compile + probe + swap + write file) | median ms | max ms |");
    println!("|---|---|---|");
    let s = summarize(swaps, Duration::ZERO);
    println!(
        "| 6 swaps alternating template (82 KB) / noop (23 KB) | {:.1} | {:.1} |",
        s.median.as_secs_f64() * 1e3,
        s.max.as_secs_f64() * 1e3
    );
    Ok(())
}

/// `keep_resident_bytes` for the engines of this run (second argument, in KiB).
static KEEP_RESIDENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn registry(
    dir: &std::path::Path,
    name: &str,
    config: serde_json::Value,
) -> anyhow::Result<PluginRegistry> {
    let mut e = PluginEntry::new(name, "p.wasm", FailurePolicy::Closed);
    e.timeout_ms = 100;
    if let serde_json::Value::Object(m) = config {
        e.config = m;
    }
    registry_of(dir, vec![e]).await
}

/// The `[[plugin]]` entries of the repository's switchyard.toml.
fn default_chain() -> anyhow::Result<Vec<PluginEntry>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("switchyard.toml"))?;
    let config = switchyard::config::parse(&text, "switchyard.toml", &root)
        .map_err(|e| anyhow::anyhow!("switchyard.toml: {:?}", e.problems))?;
    Ok(config.plugin_chain)
}

async fn registry_of(
    dir: &std::path::Path,
    entries: Vec<PluginEntry>,
) -> anyhow::Result<PluginRegistry> {
    let limits = EngineLimits {
        keep_resident_bytes: KEEP_RESIDENT.load(std::sync::atomic::Ordering::Relaxed),
        ..EngineLimits::default()
    };
    let engine = PluginEngine::new(limits).map_err(anyhow::Error::msg)?;
    let ups: BTreeSet<String> = ["local", "hosted", "big"].map(String::from).into();
    let reg = PluginRegistry::new(engine, PluginsSection::new(dir), entries, ups);
    reg.reload().await?;
    Ok(reg)
}

fn time(calls: usize, mut f: impl FnMut()) -> Timing {
    let mut v = Vec::with_capacity(calls);
    let all = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    summarize(v, all.elapsed())
}

fn row(name: &str, s: &Timing) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("| {name} | {:.1} | {:.1} | {:.1} |", us(s.median), us(s.p99), us(s.all_in));
}

/// What the `template` plugin does, natively.
fn native_template(req: &LlmRequest) -> (bool, usize, Vec<(usize, usize)>) {
    let blocked = req.messages.iter().any(|m| m.content.contains("forbidden"));
    let len: usize = req.messages.iter().map(|m| m.content.len()).sum();
    let mut edits = Vec::new();
    for (i, m) in req.messages.iter().enumerate().filter(|(_, m)| m.role == "user") {
        for (pos, _) in m.content.match_indices(|c: char| c.is_ascii_digit()) {
            edits.push((i, pos));
        }
    }
    (blocked, len, edits)
}
