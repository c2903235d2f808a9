//! Benchmark: plugins in Rust, JavaScript and Python side by side, in one run. Per language the
//! component's size, its compile time (Cranelift) against its load time from the precompiled-
//! artifact cache, the compile of a new version of it (other source, the same toolchain) once the
//! first version's functions are in the compiled-function cache, a restart (load from the cache +
//! probe until live) and a hot swap to it, then the request phase on the same ~2 KB chat body:
//! with a fresh instance per request and with `isolation = "reuse"` back to back (median, p99,
//! and all the work per call including what runs off the request path), and with fresh
//! instances at 200 requests/s arriving at random (an open loop, each request timed from its
//! arrival). The Rust plugin is `template`; the JavaScript and Python ones are
//! plugins/polyglot/*-hello, built with the real toolchains. Prints Markdown for BENCHMARKS.md.
//!
//! Run: `scripts/bench-lang.sh [CALLS [--per-call]]` (`--per-call`: the request phase only)

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::plugin::artifacts::{ArtifactCache, Origin};
use switchyard::plugin::{
    FailurePolicy, Isolation, PluginEngine, PluginEntry, PluginRegistry, PluginsSection,
};
use switchyard_tests::chain_timing::{chat_2kb, sample_chain, sample_chain_paced};
use switchyard_tests::{polyglot, sha256_hex, wasm};

/// The mean gap between requests of the open-loop rows: 200 requests/s, which one worker serves
/// with every language's fresh instances (the slowest makes one in under 2 ms).
const PACE: Duration = Duration::from_millis(5);

fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let per_call_only = std::env::args().nth(2).as_deref() == Some("--per-call");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(calls, per_call_only))
}

async fn run(calls: usize, per_call_only: bool) -> anyhow::Result<()> {
    let c = polyglot::components();
    let langs: [(&str, &Path); 3] = [
        ("Rust (`template`)", Path::new(wasm::TEMPLATE)),
        ("JavaScript", &c.js_hello),
        ("Python", &c.py_hello),
    ];
    let req = chat_2kb();
    let text: usize = req.messages.iter().map(|m| m.content.len()).sum();
    println!(
        "request text: {text} bytes in {} messages; {calls} calls per case\n",
        req.messages.len()
    );

    if !per_call_only {
        load_table(&langs).await?;
    }
    per_call_table(&langs, &req, calls).await
}

/// Size, compile, cached load, restart and hot swap per language.
async fn load_table(langs: &[(&str, &Path)]) -> anyhow::Result<()> {
    // Second versions, built by `scripts/build-lang-plugins.sh .cache/polyglot --next`.
    let next = |p: &Path| p.with_file_name(format!("{}_next.wasm", file_stem(p)));
    println!(
        "| plugin | size MB | compile s | compile of a new version, functions cached, s (reused / compiled) | load from cache ms | restart: load + probe, ms | hot swap to it, ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &(lang, path) in langs {
        let next = Some(next(path)).filter(|p| p.exists());
        let times = load_times(path, next.as_deref()).await?;
        let new_version = match times.new_version {
            Some((t, reused, compiled)) => {
                format!("{:.2} ({reused} / {compiled})", t.as_secs_f64())
            }
            None => "–".into(),
        };
        println!(
            "| {lang} | {:.1} | {:.2} | {new_version} | {:.0} | {:.0} | {:.0} |",
            std::fs::metadata(path)?.len() as f64 / 1e6,
            times.compile.as_secs_f64(),
            ms(times.cached),
            ms(times.restart),
            ms(times.swap),
        );
    }

    println!();
    Ok(())
}

/// The request phase per language: fresh and reused back to back, fresh with requests arriving
/// at random.
async fn per_call_table(
    langs: &[(&str, &Path)],
    req: &switchyard::plugin::LlmRequest,
    calls: usize,
) -> anyhow::Result<()> {
    println!(
        "| plugin | isolation | median µs | p99 µs | all work per call, mean µs | instance ready |"
    );
    println!("|---|---|---|---|---|---|");
    let paced = format!("fresh, {} requests/s (Poisson)", 1000 / PACE.as_millis());
    for &(lang, path) in langs {
        for (name, isolation, pace) in [
            ("fresh", Isolation::Fresh, None),
            ("reuse", Isolation::Reuse, None),
            (paced.as_str(), Isolation::Fresh, Some(PACE)),
        ] {
            let dir = tempfile::tempdir()?;
            std::fs::copy(path, dir.path().join("p.wasm"))?;
            let reg = registry(dir.path(), isolation).await?;
            let t = match pace {
                None => sample_chain(&reg, req, 100, calls).await?,
                Some(every) => sample_chain_paced(&reg, req, 100, calls, every).await?,
            };
            // Paced, the loop waits between requests: its time per request is the pace.
            let all_in = if pace.is_some() { "–".into() } else { format!("{:.1}", us(t.all_in)) };
            // The share of requests whose instance was waiting (a spare or a reused one), the
            // warm-up and the load probe included.
            let (ready, new) = reg.stats("p").map(|s| s.starts()).unwrap_or_default();
            let ready = 100.0 * ready as f64 / (ready + new).max(1) as f64;
            println!(
                "| {lang} | {name} | {:.1} | {:.1} | {all_in} | {ready:.0} % |",
                us(t.median),
                us(t.p99)
            );
        }
    }
    Ok(())
}

struct LoadTimes {
    compile: Duration,
    /// A second version compiled after the first: time, functions reused, functions compiled.
    new_version: Option<(Duration, u64, u64)>,
    cached: Duration,
    restart: Duration,
    swap: Duration,
}

/// Compile into an empty cache, compile `next` (a new version) with the first one's functions
/// cached, load back from the cache, a registry's load from the warm cache (what a restart does
/// before it listens), and a hot swap from another plugin to this one.
async fn load_times(path: &Path, next: Option<&Path>) -> anyhow::Result<LoadTimes> {
    let dir = tempfile::tempdir()?;
    let cache_dir = dir.path().join("cache");
    let mut section = section(dir.path());
    section.artifact_cache = Some(cache_dir.clone());
    // The same directory serves the restart below.
    let engine = PluginEngine::new(section.engine_limits()).map_err(anyhow::Error::msg)?;
    let cache = ArtifactCache::open(&cache_dir, engine.engine()).map_err(anyhow::Error::msg)?;
    let wasm = std::fs::read(path)?;
    let sha = sha256_hex(&wasm);
    let t = Instant::now();
    let (_, origin) = cache
        .load_or_compile(engine.engine(), &wasm, &sha)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let compile = t.elapsed();
    anyhow::ensure!(origin == Origin::Compiled);
    let new_version = match (next, engine.function_cache()) {
        (Some(next), Some(functions)) => {
            let (wasm, before) = (std::fs::read(next)?, functions.stats());
            let t = Instant::now();
            let (_, origin) = cache
                .load_or_compile(engine.engine(), &wasm, &sha256_hex(&wasm))
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let took = t.elapsed();
            anyhow::ensure!(origin == Origin::Compiled, "{} is not a new version", next.display());
            let after = functions.stats();
            Some((took, after.hits - before.hits, after.stored - before.stored))
        }
        _ => None,
    };
    let t = Instant::now();
    let (_, origin) = cache
        .load_or_compile(engine.engine(), &wasm, &sha)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let cached = t.elapsed();
    anyhow::ensure!(origin == Origin::Cached);

    // A restart: a new registry over the warm cache, loaded until live.
    std::fs::write(dir.path().join("p.wasm"), &wasm)?;
    let t = Instant::now();
    let reg = PluginRegistry::new(engine, section, vec![entry(Isolation::Fresh)], upstreams());
    reg.reload().await?;
    let restart = t.elapsed();

    // A hot swap away (to the Rust `noop`) and back to these bytes, whose artifact is cached.
    reg.install("p", std::fs::read(wasm::NOOP)?, None).await?;
    let t = Instant::now();
    reg.install("p", wasm, None).await?;
    let swap = t.elapsed();
    Ok(LoadTimes { compile, new_version, cached, restart, swap })
}

fn section(dir: &Path) -> PluginsSection {
    PluginsSection::new(dir)
}

fn entry(isolation: Isolation) -> PluginEntry {
    let mut e = PluginEntry::new("p", "p.wasm", FailurePolicy::Closed);
    e.timeout_ms = 1000;
    e.isolation = isolation;
    e
}

fn upstreams() -> BTreeSet<String> {
    ["local", "hosted", "big"].map(String::from).into()
}

/// A registry over `dir`/p.wasm, compiled through the shared artifact cache.
async fn registry(dir: &Path, isolation: Isolation) -> anyhow::Result<PluginRegistry> {
    let mut section = section(dir);
    section.artifact_cache = Some(polyglot::artifact_cache());
    let engine = PluginEngine::new(section.engine_limits()).map_err(anyhow::Error::msg)?;
    let reg = PluginRegistry::new(engine, section, vec![entry(isolation)], upstreams());
    reg.reload().await?;
    Ok(reg)
}

fn file_stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
