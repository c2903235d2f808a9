//! Evaluation of the `pii-redact` plugin, run through the host as the proxy runs it: detection
//! quality per entity type on a seeded, labelled corpus (with near-misses), leaks and restore
//! mismatches when redacted answers stream back in random splits, and redaction throughput.
//! Prints Markdown tables for BENCHMARKS.md.
//!
//! Run: `scripts/eval-pii.sh [SEED [MESSAGES]]`

mod corpus;
mod prose;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fastrand::Rng;
use switchyard::plugin::{
    EngineLimits, EventOutcome, FailurePolicy, LlmRequest, Message, PluginEngine, PluginEntry,
    PluginRegistry, PluginsSection, Proceed, RequestOutcome, StreamEvent,
};
use switchyard_tests::wasm;

mod stream;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(seed, messages))
}

async fn run(seed: u64, messages: usize) -> anyhow::Result<()> {
    println!("seed {seed}; {messages} labelled messages; plugin {}\n", wasm::PII_REDACT);
    let dir = tempfile::tempdir()?;
    std::fs::copy(wasm::PII_REDACT, dir.path().join("p.wasm"))?;
    let mask = registry(dir.path(), full_config("mask")).await?;
    detection(&mask, &mut Rng::with_seed(seed), messages).await?;
    out_of_scope(&mask).await?;
    let pseudo = registry(dir.path(), full_config("pseudonymize")).await?;
    stream::evaluate(&pseudo, &mut Rng::with_seed(seed ^ 0x5eed), messages / 2).await?;
    let mut scan = full_config("mask");
    scan.insert("scan_answer".into(), true.into());
    let scan = registry(dir.path(), scan).await?;
    stream::evaluate_scan(&scan, &mut Rng::with_seed(seed ^ 0x5ca7), messages / 2).await?;
    println!("| config | body | entities | calls | median µs | p99 µs | MB/s (median) |");
    println!("|---|---|---|---|---|---|---|");
    let mut lists = full_config("pseudonymize");
    lists.remove("custom_patterns");
    for (name, config) in [
        ("default (`{}`)", serde_json::Map::new()),
        ("+ 10 names, 3 deny-words", lists),
        ("+ 1 custom pattern (regex-lite)", full_config("pseudonymize")),
    ] {
        let reg = registry(dir.path(), config).await?;
        throughput(&reg, name, &mut Rng::with_seed(seed ^ 0xb0d7)).await?;
    }
    Ok(())
}

/// The config of the evaluation: `mode` and the corpus' names, deny-words and custom pattern.
fn full_config(mode: &str) -> serde_json::Map<String, serde_json::Value> {
    let config = serde_json::json!({
        "mode": mode, "names": corpus::NAMES, "deny_words": corpus::DENY,
        "custom_patterns": { "employee": corpus::EMPLOYEE_PATTERN },
    });
    match config {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// A registry holding only pii-redact with this config.
async fn registry(
    dir: &std::path::Path,
    config: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<PluginRegistry> {
    let engine = PluginEngine::new(EngineLimits::default()).map_err(anyhow::Error::msg)?;
    let mut e = PluginEntry::new("pii", "p.wasm", FailurePolicy::Closed);
    // Generous: the 64 KB throughput case must not hit the deadline on a busy machine.
    e.timeout_ms = 1000;
    e.config = config;
    let reg = PluginRegistry::new(engine, PluginsSection::new(dir), vec![e], Default::default());
    reg.reload().await?;
    Ok(reg)
}

/// A chat request with these user messages.
pub fn request(texts: Vec<String>) -> LlmRequest {
    LlmRequest {
        endpoint: "/v1/chat/completions".into(),
        model: Some("m".into()),
        stream: false,
        messages: texts
            .into_iter()
            .map(|content| Message { role: "user".into(), content })
            .collect(),
        params_json: "{}".into(),
        tenant: None,
        headers: vec![],
        tags: vec![],
    }
}

/// Runs the chain; the request must proceed.
pub async fn proceed(reg: &PluginRegistry, req: LlmRequest) -> anyhow::Result<Box<Proceed>> {
    match reg.current().on_request(req).await {
        RequestOutcome::Proceed(p) => Ok(p),
        other => bail!("the plugin did not proceed: {other:?}"),
    }
}

#[derive(Default)]
struct Score {
    support: u64,
    tp: u64,
    fp: u64,
    fn_: u64,
}

/// Detection quality in mask mode: each labelled entity must become `[TYPE]`, nothing else may.
async fn detection(reg: &PluginRegistry, rng: &mut Rng, n: usize) -> anyhow::Result<()> {
    let mut scores: BTreeMap<&str, Score> =
        corpus::TYPES.iter().map(|t| (*t, Score::default())).collect();
    let (mut exact, mut shown) = (0, 0);
    let corpus: Vec<Vec<corpus::Piece>> = (0..n).map(|_| prose::message(rng, 0.6)).collect();
    for batch in corpus.chunks(20) {
        let texts: Vec<String> =
            batch.iter().map(|m| m.iter().map(|p| p.text.as_str()).collect()).collect();
        let p = proceed(reg, request(texts)).await?;
        for (pieces, out) in batch.iter().zip(&p.request.messages) {
            let out = &out.content;
            let expected: String = pieces
                .iter()
                .map(|p| {
                    p.label.map_or(p.text.clone(), |l| format!("[{}]", l.to_ascii_uppercase()))
                })
                .collect();
            if *out == expected {
                exact += 1;
            } else if shown < 12 {
                shown += 1;
                eprintln!("MISMATCH\n  want {expected:?}\n  got  {out:?}");
            }
            for t in corpus::TYPES {
                let token = format!("[{}]", t.to_ascii_uppercase());
                let entities: Vec<&corpus::Piece> =
                    pieces.iter().filter(|p| p.label == Some(*t)).collect();
                let missed =
                    entities.iter().filter(|p| out.contains(p.text.as_str())).count() as u64;
                let found = out.matches(token.as_str()).count() as u64;
                let s = scores.get_mut(t).context("type")?;
                let support = entities.len() as u64;
                let tp = found.min(support - missed);
                s.support += support;
                s.tp += tp;
                s.fn_ += support - tp;
                s.fp += found - tp;
            }
        }
    }
    println!("| type | support | TP | FP | FN | recall | precision |");
    println!("|---|---|---|---|---|---|---|");
    let ratio = |a: u64, b: u64| {
        if b == 0 { "n/a".to_string() } else { format!("{:.4}", a as f64 / b as f64) }
    };
    let mut total = Score::default();
    for (t, s) in &scores {
        println!(
            "| {t} | {} | {} | {} | {} | {} | {} |",
            s.support,
            s.tp,
            s.fp,
            s.fn_,
            ratio(s.tp, s.tp + s.fn_),
            ratio(s.tp, s.tp + s.fp)
        );
        if !matches!(*t, "name" | "custom" | "employee") {
            total.support += s.support;
            total.tp += s.tp;
            total.fp += s.fp;
            total.fn_ += s.fn_;
        }
    }
    let t = &total;
    println!(
        "| **structured (email..secret)** | {} | {} | {} | {} | {} | {} |",
        t.support,
        t.tp,
        t.fp,
        t.fn_,
        ratio(t.tp, t.tp + t.fn_),
        ratio(t.tp, t.tp + t.fp)
    );
    println!(
        "\nmessages redacted exactly as labelled (no partial or extra masks): {exact} / {n}\n"
    );
    Ok(())
}

/// PII the plugin is documented not to catch, shown as it comes out (not part of the scores).
const OUT_OF_SCOPE: &[&str] = &[
    "write to jane at example dot com",
    "call 555-1234 after six",
    "IBAN de89 3704 0044 0532 0130 00",
    "ask Michael Johnson about it",
    "I live at 221B Baker Street, London NW1 6XE",
    "born on 1984-03-12",
    "NI number QQ 12 34 56 C",
    "my password is hunter2",
    "passport 533380006",
];

async fn out_of_scope(reg: &PluginRegistry) -> anyhow::Result<()> {
    let texts: Vec<String> = OUT_OF_SCOPE.iter().map(|t| t.to_string()).collect();
    let p = proceed(reg, request(texts)).await?;
    println!("| not detected by design (README, \"Limits\"): input | output |");
    println!("|---|---|");
    for (input, out) in OUT_OF_SCOPE.iter().zip(&p.request.messages) {
        println!("| {input} | {} |", out.content);
    }
    println!();
    Ok(())
}

/// Time of the whole plugin call (fresh instance, init, on-request with redaction) on bodies of
/// about 2 KB and 64 KB of prose with entities; MB/s of message text.
async fn throughput(reg: &PluginRegistry, config: &str, rng: &mut Rng) -> anyhow::Result<()> {
    for (size, calls) in [(2 << 10, 2000), (64 << 10, 200)] {
        let mut text = String::new();
        while text.len() < size {
            let m: String = prose::message(rng, 0.3).iter().map(|p| p.text.as_str()).collect();
            text.push_str(&m);
            text.push('\n');
        }
        let req = request(vec![text.clone()]);
        let found = proceed(reg, req.clone()).await?;
        let entities = found
            .request
            .tags
            .iter()
            .find(|(k, _)| k == "pii")
            .map_or("0".into(), |(_, v)| v.clone());
        let mut times: Vec<Duration> = Vec::with_capacity(calls);
        for _ in 0..calls {
            let r = req.clone();
            let t = Instant::now();
            let p = proceed(reg, r).await?;
            times.push(t.elapsed());
            drop(p);
        }
        times.sort_unstable();
        let (med, p99) = (times[calls / 2], times[calls * 99 / 100]);
        let mbs = text.len() as f64 / med.as_secs_f64() / 1e6;
        println!(
            "| {config} | {:.1} KB | {entities} | {calls} | {:.0} | {:.0} | {mbs:.1} |",
            text.len() as f64 / 1024.0,
            med.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    Ok(())
}

/// Feeds one event to the watch.
pub fn event(p: &mut Proceed, seq: u32, choice: u32, text: &str, finish: bool) -> EventOutcome {
    p.watch.on_event(StreamEvent {
        seq,
        committed: seq > 0,
        choice,
        text: text.to_string(),
        finish_reason: finish.then(|| "stop".to_string()),
    })
}
