//! Benchmark: switchyard-inference against llama.cpp's llama-server on the same model, threads and
//! slots, one server at a time. Prints a markdown table for BENCHMARKS.md. scripts/bench-inference.sh
//! builds both servers and runs this.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use switchyard_inference::client::Client;
use tokio::process::{Child, Command};

#[derive(Parser, Debug)]
struct Args {
    /// switchyard-inference binary.
    #[arg(long)]
    server_bin: PathBuf,
    /// llama.cpp llama-server binary (the peer); without it only switchyard-inference is measured.
    #[arg(long)]
    peer_bin: Option<PathBuf>,
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    #[arg(long, default_value_t = 8)]
    parallel: u32,
    /// Total KV cells; each of the `parallel` slots gets ctx_size / parallel.
    #[arg(long, default_value_t = 16384)]
    ctx_size: u32,
    #[arg(long, default_value_t = 0)]
    n_gpu_layers: u32,
    /// Tokens generated per request in the throughput runs.
    #[arg(long, default_value_t = 128)]
    gen_tokens: u32,
    /// Repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

/// One server's results.
#[derive(Debug, Default)]
struct Results {
    single_tps: f64,
    aggregate_tps: f64,
    ttft_uncached_ms: f64,
    ttft_cached_ms: f64,
    system_prompt_tokens: u64,
    peak_rss_mb: f64,
}

impl Results {
    /// For a server that was not measured: every number reads NaN.
    fn missing() -> Self {
        let nan = f64::NAN;
        Results {
            single_tps: nan,
            aggregate_tps: nan,
            ttft_uncached_ms: nan,
            ttft_cached_ms: nan,
            system_prompt_tokens: 0,
            peak_rss_mb: nan,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Switchyard,
    LlamaServer,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // Both servers run for the whole benchmark and every measurement alternates between them, so
    // changes in the machine's load (2 shared cores) hit both alike.
    let mut servers = Vec::new();
    let kinds: &[Kind] = if args.peer_bin.is_some() {
        &[Kind::Switchyard, Kind::LlamaServer]
    } else {
        &[Kind::Switchyard]
    };
    for &kind in kinds {
        servers.push(Server::start(&args, kind).await.with_context(|| name(kind))?);
    }
    let mut results: Vec<Results> = servers.iter().map(|_| Results::default()).collect();
    measure(&args, &servers, &mut results).await?;
    for (server, r) in servers.iter_mut().zip(results.iter_mut()) {
        r.peak_rss_mb = peak_rss_mb(&server.child).unwrap_or(f64::NAN);
        let _ = server.child.kill().await;
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let missing = Results::missing();
    let peer = results.get(1).unwrap_or(&missing);
    print_table(&args, &results[0], peer, load_before.trim(), load_after.trim());
    Ok(())
}

/// A running server under test.
struct Server {
    kind: Kind,
    child: Child,
    client: Client,
}

impl Server {
    async fn start(args: &Args, kind: Kind) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut child = spawn(args, kind, port)?;
        let client = Client::new(([127, 0, 0, 1], port).into());
        wait_ready(&client, kind, &mut child).await?;
        eprintln!("bench: {} ready on port {port}", name(kind));
        // Warm-up: first touch of weights and buffers.
        chat(&client, &[msg("user", "Hello")], 8).await?;
        Ok(Server { kind, child, client })
    }
}

/// The servers in turn, the first one changing every repetition.
fn in_turn(servers: &[Server], rep: usize) -> impl Iterator<Item = (usize, &Server)> {
    let n = servers.len();
    (0..n).map(move |k| (k + rep) % n).map(move |i| (i, &servers[i]))
}

async fn measure(args: &Args, servers: &[Server], results: &mut [Results]) -> anyhow::Result<()> {
    let story = [
        msg("system", "You are a storyteller."),
        msg("user", "Write a long story about a lighthouse keeper and a storm."),
    ];
    let mut samples = vec![Vec::new(); servers.len()];
    for rep in 0..args.reps {
        for (i, s) in in_turn(servers, rep) {
            let t = chat(&s.client, &story, args.gen_tokens).await.with_context(|| name(s.kind))?;
            samples[i].push(t.decode_tps());
        }
    }
    eprintln!("bench: single-stream samples (tok/s) {samples:.1?}");
    for (r, v) in results.iter_mut().zip(&mut samples) {
        r.single_tps = median(std::mem::take(v));
    }

    for rep in 0..args.reps {
        for (i, s) in in_turn(servers, rep) {
            let tps = aggregate(&s.client, args.parallel as usize, args.gen_tokens, rep)
                .await
                .with_context(|| name(s.kind))?;
            samples[i].push(tps);
        }
    }
    eprintln!("bench: aggregate samples (tok/s) {samples:.1?}");
    for (r, v) in results.iter_mut().zip(&mut samples) {
        r.aggregate_tps = median(std::mem::take(v));
    }
    eprintln!(
        "bench: aggregate {:.1?} tok/s",
        results.iter().map(|r| r.aggregate_tps).collect::<Vec<_>>()
    );

    // TTFT with a ~1K-token system prompt: never seen before (a unique first line), then one that
    // was sent once before with another question.
    for rep in 0..args.reps {
        for (i, s) in in_turn(servers, rep) {
            let system = long_system_prompt(&format!("{:08x}-{rep}", fastrand::u32(..)));
            let (ms, tokens) = timed_first(&s.client, &system, "When does the next train leave?")
                .await
                .with_context(|| name(s.kind))?;
            samples[i].push(ms);
            results[i].system_prompt_tokens = tokens;
        }
    }
    eprintln!("bench: uncached TTFT samples (ms) {samples:.0?}");
    for (r, v) in results.iter_mut().zip(&mut samples) {
        r.ttft_uncached_ms = median(std::mem::take(v));
    }
    let shared = long_system_prompt("shared");
    for s in servers {
        timed_first(&s.client, &shared, "Hello.").await.with_context(|| name(s.kind))?;
    }
    let questions =
        ["How much is a ticket?", "Which platform for line 3?", "Is there a night train?"];
    for rep in 0..args.reps {
        for (i, s) in in_turn(servers, rep) {
            let q = questions[rep % questions.len()];
            let (ms, _) = timed_first(&s.client, &shared, q).await.with_context(|| name(s.kind))?;
            samples[i].push(ms);
        }
    }
    eprintln!("bench: cached TTFT samples (ms) {samples:.0?}");
    for (r, v) in results.iter_mut().zip(&mut samples) {
        r.ttft_cached_ms = median(std::mem::take(v));
    }
    eprintln!(
        "bench: ttft uncached {:.0?} ms, cached {:.0?} ms",
        results.iter().map(|r| r.ttft_uncached_ms).collect::<Vec<_>>(),
        results.iter().map(|r| r.ttft_cached_ms).collect::<Vec<_>>()
    );
    Ok(())
}

fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Switchyard => "switchyard-inference",
        Kind::LlamaServer => "llama-server",
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn spawn(args: &Args, kind: Kind, port: u16) -> anyhow::Result<Child> {
    let (t, np, c, ngl) = (
        args.threads.to_string(),
        args.parallel.to_string(),
        args.ctx_size.to_string(),
        args.n_gpu_layers.to_string(),
    );
    let mut cmd = match kind {
        Kind::Switchyard => {
            let mut cmd = Command::new(&args.server_bin);
            cmd.arg("--model")
                .arg(&args.model)
                .args([
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--parallel",
                    &np,
                    "--ctx-size",
                    &c,
                ])
                .args(["--threads", &t, "--n-gpu-layers", &ngl, "--batch-size", "512"]);
            cmd
        }
        Kind::LlamaServer => {
            let peer = args.peer_bin.as_ref().context("no --peer-bin")?;
            let mut cmd = Command::new(peer);
            cmd.arg("-m")
                .arg(&args.model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-np", &np, "-c", &c])
                .args(["-t", &t, "-tb", &t, "-ngl", &ngl, "-b", "512", "-ub", "512"]);
            cmd
        }
    };
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    Ok(cmd.spawn()?)
}

async fn wait_ready(client: &Client, kind: Kind, child: &mut Child) -> anyhow::Result<()> {
    let path = if kind == Kind::Switchyard { "/healthz" } else { "/health" };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if let Some(status) = child.try_wait()? {
            bail!("{} exited with {status}", name(kind));
        }
        if client.get(path).await.is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{} not ready after 120 s", name(kind))
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// One streamed greedy chat request's timing.
struct Timing {
    tokens: u64,
    first: Duration,
    total: Duration,
}

impl Timing {
    /// Generation speed after the first token: decode only, prompt excluded.
    fn decode_tps(&self) -> f64 {
        let secs = (self.total - self.first).as_secs_f64();
        if self.tokens > 1 && secs > 0.0 { (self.tokens - 1) as f64 / secs } else { 0.0 }
    }
}

async fn chat(client: &Client, messages: &[Value], max_tokens: u32) -> anyhow::Result<Timing> {
    let body = json!({
        "messages": messages, "temperature": 0, "max_tokens": max_tokens, "stream": true,
        "stream_options": {"include_usage": true},
    });
    let s = client.stream("/v1/chat/completions", &body).await?;
    if !s.done {
        bail!("stream did not finish: {:?}", s.chunks.last());
    }
    let tokens = s
        .usage
        .as_ref()
        .and_then(|u| u["completion_tokens"].as_u64())
        // Without usage, count content chunks: both servers send one per token.
        .unwrap_or_else(|| {
            s.chunks
                .iter()
                .filter(|c| {
                    c["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty())
                })
                .count() as u64
        });
    let first = s.first_content.context("no content")?;
    Ok(Timing { tokens, first, total: s.elapsed })
}

/// `n` concurrent streams; completion tokens of all of them over the wall time of the batch.
async fn aggregate(client: &Client, n: usize, gen_tokens: u32, rep: usize) -> anyhow::Result<f64> {
    let topics = [
        "a lighthouse",
        "a dragon",
        "a train",
        "the sea",
        "a garden",
        "a robot",
        "a city",
        "a mountain",
    ];
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            let topic = topics[(i + rep) % topics.len()];
            let messages = vec![msg(
                "user",
                &format!("Write a long story about {topic}. Variation {rep}-{i}."),
            )];
            tokio::spawn(async move { chat(&client, &messages, gen_tokens).await })
        })
        .collect();
    let mut tokens = 0;
    for t in tasks {
        tokens += t.await??.tokens;
    }
    Ok(tokens as f64 / start.elapsed().as_secs_f64())
}

/// A deterministic system prompt of about 1K tokens.
fn long_system_prompt(nonce: &str) -> String {
    let mut s =
        format!("Session {nonce}. You are the help desk of the Switchyard railway. Rules:\n");
    for i in 1..=36 {
        s.push_str(&format!("Rule {i}: trains on line {} leave platform {} every {} minutes; tickets cost {} euros.\n", i % 7, i % 12 + 1, 5 + i % 25, 2 + i % 9));
    }
    s
}

async fn timed_first(client: &Client, system: &str, question: &str) -> anyhow::Result<(f64, u64)> {
    let body = json!({
        "messages": [msg("system", system), msg("user", question)],
        "temperature": 0, "max_tokens": 4, "stream": true, "stream_options": {"include_usage": true},
    });
    let s = client.stream("/v1/chat/completions", &body).await?;
    let first = s.first_content.context("no content")?;
    let prompt = s.usage.as_ref().and_then(|u| u["prompt_tokens"].as_u64()).unwrap_or(0);
    Ok((first.as_secs_f64() * 1000.0, prompt))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn peak_rss_mb(child: &Child) -> Option<f64> {
    let pid = child.id()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn print_table(args: &Args, a: &Results, b: &Results, load_before: &str, load_after: &str) {
    let ratio = |x: f64, y: f64| if y > 0.0 { format!("{:.2}×", x / y) } else { "-".to_owned() };
    println!(
        "Settings: --threads {} --parallel {} (llama-server -np {}), --ctx-size {} ({} per slot), batch 512, --n-gpu-layers {}, {} tokens per stream, median of {} runs; the two servers run side by side and alternate on every measurement.",
        args.threads,
        args.parallel,
        args.parallel,
        args.ctx_size,
        args.ctx_size / args.parallel.max(1),
        args.n_gpu_layers,
        args.gen_tokens,
        args.reps
    );
    println!("Load average (1/5/15 min) before: {load_before}; after: {load_after}.");
    println!(
        "System prompt for TTFT: {} prompt tokens in all.",
        a.system_prompt_tokens.max(b.system_prompt_tokens)
    );
    println!();
    println!("| metric | switchyard-inference | llama-server | switchyard / llama-server | goal |");
    println!("| --- | ---: | ---: | ---: | --- |");
    println!(
        "| single-stream generation, tok/s | {:.1} | {:.1} | {} | ≥ 0.95× |",
        a.single_tps,
        b.single_tps,
        ratio(a.single_tps, b.single_tps)
    );
    println!(
        "| aggregate, {} concurrent streams, tok/s | {:.1} | {:.1} | {} | ≥ 1.0× |",
        args.parallel,
        a.aggregate_tps,
        b.aggregate_tps,
        ratio(a.aggregate_tps, b.aggregate_tps)
    );
    println!(
        "| TTFT, ~1K-token system prompt uncached, ms | {:.0} | {:.0} | {} | |",
        a.ttft_uncached_ms,
        b.ttft_uncached_ms,
        ratio(a.ttft_uncached_ms, b.ttft_uncached_ms)
    );
    println!(
        "| TTFT, same system prompt cached, ms | {:.0} | {:.0} | {} | |",
        a.ttft_cached_ms,
        b.ttft_cached_ms,
        ratio(a.ttft_cached_ms, b.ttft_cached_ms)
    );
    println!(
        "| TTFT cached / uncached | {:.2} | {:.2} | | ≤ 0.3 |",
        a.ttft_cached_ms / a.ttft_uncached_ms,
        b.ttft_cached_ms / b.ttft_uncached_ms
    );
    println!(
        "| peak RSS, MB | {:.0} | {:.0} | {} | |",
        a.peak_rss_mb,
        b.peak_rss_mb,
        ratio(a.peak_rss_mb, b.peak_rss_mb)
    );
}
