//! Evaluation of the `pii-redact` plugin on a corpus it was not written with: the JSON-lines
//! split made by `scripts/pii-corpus/generate.py`, sent through the real component in the host
//! with the pii-redact config of the shipped `switchyard.toml`. Prints Markdown tables: recall
//! per type, precision per placeholder type, phones per region, false positives per 10,000 words
//! of natural text, stream leaks, and MB/s. The matching rule is in `switchyard_tests::pii_eval`.
//!
//! Run: `scripts/eval-pii.sh [--split dev|heldout] [--show N]` (the script makes the corpus).
//! Direct: `pii-eval --corpus FILE [--show N] [--stream N] [--no-bench | --bench-only]
//! [--calls N] [--plugin FILE] [--perf-map]` (`--plugin`: another build of the component than
//! the tests' own; `--calls`: calls per 2 KB row of the throughput table, 2000 by default;
//! `--baseline`: with `--bench-only`, time that build too, alternating call by call;
//! `--perf-map`: write the perf map, so that `perf record` of the run names the plugin's
//! functions).

mod report;
mod stream;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fastrand::Rng;
use switchyard::plugin::{
    EngineLimits, EventOutcome, FailurePolicy, LlmRequest, PluginEngine, PluginEntry,
    PluginRegistry, PluginsSection, Proceed, RequestOutcome, StreamEvent,
};
use switchyard_tests::pii_eval::{self, Record, Scores};
use switchyard_tests::wasm;

/// The proxy's allocator, as the shipped binary has it (see [`switchyard::Allocator`]): the
/// host's share of a plugin call (lifting strings, applying edits) is timed as the proxy runs it.
#[global_allocator]
static ALLOC: switchyard::Allocator = switchyard::Allocator;

/// Messages per request: the plugin numbers placeholders over a whole request, as a chat does.
const BATCH: usize = 16;

struct Args {
    corpus: PathBuf,
    show: usize,
    stream: usize,
    bench: bool,
    /// Only the throughput table (no scores, no streams): for timing a detector change.
    bench_only: bool,
    /// Calls per 2 KB row (a tenth of them per 64 KB row): fewer under a profiler.
    calls: usize,
    /// Another build of the component (to time a before and an after in one session).
    plugin: Option<PathBuf>,
    /// A second build timed call by call alternately with the first (`--bench-only`): on a shared
    /// machine, the only fair before/after.
    baseline: Option<PathBuf>,
    /// wasmtime's perf map, for profiling the plugin under `perf` (`[plugins] perf_map`).
    perf_map: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        corpus: PathBuf::new(),
        show: 0,
        stream: 400,
        bench: true,
        bench_only: false,
        calls: 2000,
        baseline: None,
        plugin: None,
        perf_map: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--corpus" => a.corpus = it.next().context("--corpus FILE")?.into(),
            "--show" => a.show = it.next().context("--show N")?.parse()?,
            "--stream" => a.stream = it.next().context("--stream N")?.parse()?,
            "--no-bench" => a.bench = false,
            "--bench-only" => a.bench_only = true,
            "--calls" => a.calls = it.next().context("--calls N")?.parse::<usize>()?.max(10),
            "--plugin" => a.plugin = Some(it.next().context("--plugin FILE")?.into()),
            "--baseline" => a.baseline = Some(it.next().context("--baseline FILE")?.into()),
            "--perf-map" => a.perf_map = true,
            other => bail!(
                "unknown argument {other:?}; usage: pii-eval --corpus FILE [--show N] [--stream N] [--no-bench | --bench-only] [--calls N] [--plugin FILE] [--baseline FILE] [--perf-map]"
            ),
        }
    }
    if a.corpus.as_os_str().is_empty() {
        bail!("usage: pii-eval --corpus FILE (scripts/eval-pii.sh makes one)");
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    let records = pii_eval::load(&a.corpus)?;
    let toml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../switchyard.toml");
    let config = pii_eval::shipped_config(&toml)?;
    let labelled: Vec<&Record> = records.iter().filter(|r| r.kind == "labelled").collect();
    let plugin = a.plugin.clone().unwrap_or_else(|| PathBuf::from(wasm::PII_REDACT));
    println!(
        "corpus {} ({} labelled messages, {} natural-text chunks); plugin {}; config as shipped in switchyard.toml: `{}`\n",
        a.corpus.display(),
        labelled.len(),
        records.len() - labelled.len(),
        plugin.display(),
        serde_json::Value::Object(config.clone())
    );
    let dir = tempfile::tempdir()?;
    std::fs::copy(&plugin, dir.path().join("p.wasm"))?;
    let reg = registry(dir.path(), config.clone(), a.perf_map).await?;
    if a.bench_only {
        let mut regs = vec![("this build".to_string(), reg)];
        if let Some(base) = &a.baseline {
            let dir = tempfile::tempdir()?;
            std::fs::copy(base, dir.path().join("p.wasm"))?;
            let name = format!("baseline {}", base.display());
            regs.insert(0, (name, registry(dir.path(), config, a.perf_map).await?));
            return bench_table(&regs, &records, a.calls).await;
        }
        return bench_table(&regs, &records, a.calls).await;
    }
    let mut scores = Scores::default();
    for batch in records.chunks(BATCH) {
        let texts: Vec<&str> = batch.iter().map(|r| r.text.as_str()).collect();
        for (r, (out, reds)) in batch.iter().zip(pii_eval::redact(&reg, &texts).await?) {
            match &reds {
                Ok(reds) => scores.add(r, Ok(reds)),
                Err(why) => {
                    eprintln!("UNALIGNED {}: {why}", r.id);
                    scores.add(r, Err(&out));
                }
            }
        }
    }
    report::print(&scores, a.show);
    if a.stream > 0 {
        let texts: Vec<&str> = labelled.iter().map(|r| r.text.as_str()).collect();
        stream::evaluate(&reg, &mut Rng::with_seed(0x5eed), &texts, a.stream).await?;
    }
    if a.bench {
        bench_table(&[("this build".to_string(), reg)], &records, a.calls).await?;
    }
    Ok(())
}

/// How many entities the plugin found in `req` (its `pii` tag).
async fn entities(reg: &PluginRegistry, req: &LlmRequest) -> anyhow::Result<String> {
    let found = proceed(reg, req.clone()).await?;
    let tag = found.request.tags.iter().find(|(k, _)| k == "pii");
    Ok(tag.map_or("0".into(), |(_, v)| v.clone()))
}

/// One row of the throughput table.
fn row(
    what: &str,
    name: &str,
    bytes: usize,
    entities: &str,
    times: &[(Duration, Duration)],
    floor: &[(Duration, Duration)],
) {
    let pick = |v: &[(Duration, Duration)], f: fn(&(Duration, Duration)) -> Duration, q: usize| {
        let mut x: Vec<Duration> = v.iter().map(f).collect();
        x.sort_unstable();
        x.get((x.len() * q / 100).min(x.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    let (wall, wall99) = (pick(times, |t| t.0, 50), pick(times, |t| t.0, 99));
    let (cpu, base) = (pick(times, |t| t.1, 50), pick(floor, |t| t.1, 50));
    let own = cpu.saturating_sub(base);
    // The quietest tenth of both: on a shared machine, closer to what the work itself costs.
    let quiet = pick(times, |t| t.1, 10).saturating_sub(pick(floor, |t| t.1, 10));
    let mbs = bytes as f64 / own.as_secs_f64().max(1e-9) / 1e6;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {what} | {name} | {:.1} KB | {entities} | {} | {:.0} | {:.0} | {:.0} | {:.0} | **{:.0}** | {:.0} | {mbs:.1} |",
        bytes as f64 / 1024.0,
        times.len(),
        us(wall),
        us(wall99),
        us(cpu),
        us(base),
        us(own),
        us(quiet),
    );
}

/// The throughput table: messages made of labelled corpus messages (dense with PII), then of
/// natural-text chunks (ordinary text, next to no PII).
async fn bench_table(
    regs: &[(String, PluginRegistry)],
    records: &[Record],
    calls: usize,
) -> anyhow::Result<()> {
    println!(
        "| text | plugin | body | entities found | calls | wall median µs | wall p99 µs | CPU median µs | empty message (floor): CPU median µs | in-plugin: CPU µs (median − floor) | in-plugin, quietest tenth: CPU p10 − floor p10 µs | MB/s (in-plugin median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (what, kind) in [("PII-dense (labelled)", "labelled"), ("ordinary (natural)", "natural")] {
        let texts: Vec<&str> =
            records.iter().filter(|r| r.kind == kind).map(|r| r.text.as_str()).collect();
        throughput(regs, what, &texts, calls).await?;
    }
    println!();
    Ok(())
}

/// A registry holding only pii-redact with this config (and the perf map, if asked for).
async fn registry(
    dir: &std::path::Path,
    config: serde_json::Map<String, serde_json::Value>,
    perf_map: bool,
) -> anyhow::Result<PluginRegistry> {
    let limits = EngineLimits { perf_map, ..EngineLimits::default() };
    let engine = PluginEngine::new(limits).map_err(anyhow::Error::msg)?;
    let mut e = PluginEntry::new("pii-redact", "p.wasm", FailurePolicy::Closed);
    // Generous, unlike the shipped 50 ms: the 64 KB case must not hit the deadline on a busy
    // machine, and a slow call should show in the timings rather than fail the run.
    e.timeout_ms = 1000;
    e.config = config;
    let reg = PluginRegistry::new(engine, PluginsSection::new(dir), vec![e], Default::default());
    reg.reload().await?;
    Ok(reg)
}

/// Runs the chain; the request must proceed.
pub async fn proceed(reg: &PluginRegistry, req: LlmRequest) -> anyhow::Result<Box<Proceed>> {
    match reg.current().on_request(req).await {
        RequestOutcome::Proceed(p) => Ok(p),
        other => bail!("the plugin did not proceed: {other:?}"),
    }
}

/// Feeds one event to the watch.
pub async fn event(
    p: &mut Proceed,
    seq: u32,
    choice: u32,
    text: &str,
    finish: bool,
) -> EventOutcome {
    p.watch
        .on_event(StreamEvent {
            seq,
            committed: seq > 0,
            choice,
            text: text.to_string(),
            finish_reason: finish.then(|| "stop".to_string()),
        })
        .await
}

/// Time of the whole plugin call (instance, init, on-request with redaction) on one message of
/// exactly 2 KB (the unit: whole corpus messages in order, cut at 2,048 bytes), one of at
/// least 2 KB and one of at least 64 KB (whole messages: the rows measured since the corpus was
/// made, 2.1-2.4 KB and 64 KB). The 2 KB message is also timed with the core's private caches
/// cleared before every call ([`evict`]), as inside a proxy, whose own work between two calls
/// pushes the plugin's code and tables out (BENCHMARKS.md, "PII redaction", session 22). Calls
/// with an empty message alternate with them: their median is the floor (instance, `init`, the
/// call, the host's work), and the median minus the floor is the in-plugin cost of the text
/// (scan and redaction), the budget; MB/s of message text over that cost. Costs are
/// thread CPU time (the call runs on this thread): wall time on a shared machine also counts the
/// time other processes held the core. Alternating, text and floor see the same machine state.
async fn throughput(
    regs: &[(String, PluginRegistry)],
    what: &str,
    corpus: &[&str],
    calls: usize,
) -> anyhow::Result<()> {
    let mut scratch = vec![0u8; EVICT_BYTES];
    for (size, calls, cut, cold) in [
        (2 << 10, calls, true, false),
        (2 << 10, calls, true, true),
        (2 << 10, calls, false, false),
        (64 << 10, calls / 10, false, false),
    ] {
        // Let the instances of the calls before go back to the pool (dropped on tasks of this
        // runtime) before timing more: else the next call can find the pool busy.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut text = String::new();
        for m in corpus.iter().cycle().take(corpus.len().max(1) * 64) {
            if text.len() >= size {
                break;
            }
            text.push_str(m);
            text.push('\n');
        }
        if cut {
            text.truncate(text.floor_char_boundary(size));
        }
        let req = pii_eval::request(&[text.as_str()]);
        let empty = pii_eval::request(&[""]);
        // Per plugin: (wall, CPU) of the text's calls, and of the empty message's.
        type Samples = Vec<(Duration, Duration)>;
        let mut samples: Vec<(Samples, Samples)> = vec![Default::default(); regs.len()];
        for _ in 0..calls {
            for ((_, reg), (times, floor)) in regs.iter().zip(samples.iter_mut()) {
                for (r, out) in [(&empty, &mut *floor), (&req, &mut *times)] {
                    // Before the request's copy: in the proxy the body was just read and parsed.
                    if cold {
                        evict(&mut scratch);
                    }
                    let r = r.clone();
                    let (t, cpu) = (Instant::now(), cpu_time::ThreadTime::now());
                    let p = proceed(reg, r).await?;
                    out.push((t.elapsed(), cpu.elapsed()));
                    drop(p);
                }
            }
        }
        let what = if cold { format!("{what}, caches cleared") } else { what.to_string() };
        for ((name, reg), (times, floor)) in regs.iter().zip(&samples) {
            let entities = entities(reg, &req).await?;
            row(&what, name, text.len(), &entities, times, floor);
        }
    }
    Ok(())
}

/// Bytes written before a "caches cleared" call: twice a core's L2 here (2 MiB; L1 is smaller).
const EVICT_BYTES: usize = 4 << 20;

/// Writes one byte of every cache line of `scratch`, so that the next call finds the plugin's
/// code, tables and memory out of this core's private caches.
fn evict(scratch: &mut [u8]) {
    for line in scratch.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    std::hint::black_box(scratch);
}
