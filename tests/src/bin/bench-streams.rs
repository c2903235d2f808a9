//! Benchmark: concurrent long streams through the default chain of `switchyard.toml`, with and
//! without pii-redact watching them. Starts the mock upstream (each event `--event-ms` apart, so
//! a stream lasts about 20 events) and Switchyard as child processes, opens `--streams` streamed
//! chat requests at once over HTTP/2 (150 per connection), reads every stream to its end, and
//! checks each answer: the mock's echo, with every PII value restored and no placeholder left.
//! Two rounds in one run: clean text (no plugin watches the answer) and text with an e-mail
//! address and a phone number (pii-redact holds an instance for the whole stream). Prints a
//! markdown table: answers, refusals, wrong answers, the proxy's RSS idle and with every stream
//! open, memory per stream, and the plugin instances and their linear memory at the peak.
//!
//! Usage: `bench-streams [--streams N] [--event-ms N]` (run by `scripts/bench-streams.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard_tests::procs::{
    Guard, default_chain_section, flag, plugin_dir, read_listening, rss_kib, spawn_mock,
    spawn_switchyard, wait_until_listening,
};

const PORT: u16 = 18380;
/// Streams per HTTP/2 connection: under hyper's default of 200 concurrent streams.
const STREAMS_PER_CONNECTION: usize = 150;

fn main() -> Result<()> {
    let streams = flag("--streams", 10_000)? as usize;
    let event_ms = flag("--event-ms", 500)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let mut mock = spawn_mock(&bin_dir, &["--slow-ms", &event_ms.to_string()])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let plugins = plugin_dir(dir.path())?;
    let chain = default_chain_section(&plugins)?;
    let mut rows = Vec::new();
    for pii in [false, true] {
        // A fresh proxy per round: memory the allocator kept from one round would hide the next
        // round's growth.
        let proxy = spawn_switchyard(&bin_dir, dir.path(), &mock_addr, PORT, &chain)?;
        wait_until_listening(PORT, Duration::from_secs(120))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rows.push(runtime.block_on(round(&proxy, streams, pii))?);
        // Close the client's connections first, so the proxy's drain has nothing to wait for.
        drop(runtime);
        drop(proxy);
    }
    drop(mock);
    println!(
        "{streams} concurrent streams per round, one event every {event_ms} ms (about 20 events \
         each), over {} HTTP/2 connections.\n",
        streams.div_ceil(STREAMS_PER_CONNECTION)
    );
    println!(
        "| streams | pii-redact watching | answered | refused | wrong answers | all open after | \
         proxy RSS idle | RSS, all open | per stream | plugin instances, all open | plugin memory, all open | memory mappings, all open |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} s | {:.0} MiB | {:.0} MiB | {:.0} KiB | {} | {:.0} MiB | {} |",
            r.streams,
            if r.pii { "yes" } else { "no" },
            r.answered,
            r.refused,
            r.wrong,
            r.all_open.as_secs_f64(),
            r.rss_idle_kib as f64 / 1024.0,
            r.rss_peak_kib as f64 / 1024.0,
            r.rss_peak_kib.saturating_sub(r.rss_idle_kib) as f64 / r.streams.max(1) as f64,
            r.instances_peak,
            r.plugin_memory_peak as f64 / (1 << 20) as f64,
            r.mappings_peak,
        );
    }
    if rows.iter().any(|r| r.answered != r.streams || r.wrong > 0) {
        bail!("some streams were refused or wrong");
    }
    Ok(())
}

struct Row {
    streams: usize,
    pii: bool,
    answered: usize,
    refused: usize,
    wrong: usize,
    all_open: Duration,
    rss_idle_kib: u64,
    rss_peak_kib: u64,
    plugin_memory_peak: u64,
    instances_peak: u64,
    mappings_peak: usize,
}

/// One round: `streams` requests at once, PII or clean.
async fn round(proxy: &Guard, streams: usize, pii: bool) -> Result<Row> {
    // Idle, after one request of the round's kind has compiled and warmed what it needs.
    let mut warm = connect().await?;
    if !matches!(one_stream(&mut warm, 0, pii, Arc::default()).await, Outcome::Right) {
        bail!("the warm-up stream was not answered right");
    }
    let rss_idle_kib = rss_kib(proxy.0.id())?;
    let mut senders = Vec::new();
    for _ in 0..streams.div_ceil(STREAMS_PER_CONNECTION) {
        senders.push(connect().await?);
    }
    let open = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let sender = senders[i / STREAMS_PER_CONNECTION].clone();
            let open = Arc::clone(&open);
            tokio::spawn(async move { one_stream(&mut { sender }, i, pii, open).await })
        })
        .collect();
    // Every stream has its headers and first event: the peak. Sampled then, from outside.
    let deadline = Instant::now() + Duration::from_secs(120);
    while open.load(Ordering::Relaxed) < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_open = started.elapsed();
    let rss_peak_kib = rss_kib(proxy.0.id())?;
    let mappings_peak = mappings(proxy.0.id())?;
    let plugin_memory_peak = metric(PORT + 10, "switchyard_plugin_memory_bytes").await?;
    let instances_peak = metric(PORT + 10, "switchyard_plugin_instances_max").await?
        - metric(PORT + 10, "switchyard_plugin_instances_free").await?;
    let (mut answered, mut refused, mut wrong) = (0, 0, 0);
    for task in tasks {
        match task.await? {
            Outcome::Right => answered += 1,
            Outcome::Refused => refused += 1,
            Outcome::Wrong => wrong += 1,
        }
    }
    Ok(Row {
        streams,
        pii,
        answered,
        refused,
        wrong,
        all_open,
        rss_idle_kib,
        rss_peak_kib,
        plugin_memory_peak,
        instances_peak,
        mappings_peak,
    })
}

enum Outcome {
    Right,
    Refused,
    Wrong,
}

async fn connect() -> Result<SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", PORT)).await?;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1 << 20)
        .handshake(TokioIo::new(tcp))
        .await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The user's text of stream `i`; the mock echoes it one word per event.
fn text(i: usize, pii: bool) -> String {
    let who = if pii {
        format!("write to jo.smith{i}@example.com or call +1 415 555 {:04}", i % 10_000)
    } else {
        format!("ask about order {i} or the weather report for this week")
    };
    format!("please answer slowly and repeat this: {who} thanks a lot")
}

async fn one_stream(
    sender: &mut SendRequest<Full<Bytes>>,
    i: usize,
    pii: bool,
    open: Arc<AtomicUsize>,
) -> Outcome {
    let said = text(i, pii);
    let body = serde_json::json!({"model": "bench", "stream": true, "temperature": 0.7,
        "messages": [{"role": "user", "content": said}]});
    let Ok(request) = Request::post(format!("http://127.0.0.1:{PORT}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
    else {
        return Outcome::Wrong;
    };
    let Ok(response) = sender.send_request(request).await else { return Outcome::Refused };
    if !response.status().is_success() {
        open.fetch_add(1, Ordering::Relaxed);
        return Outcome::Refused;
    }
    let mut body = response.into_body();
    let mut sse = Vec::new();
    let mut counted = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Outcome::Wrong };
        if let Ok(data) = frame.into_data() {
            sse.extend_from_slice(&data);
            if !counted {
                counted = true;
                open.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let answer = switchyard_tests::client::stream_text(&sse);
    if answer.ends_with(&said) && !answer.contains('<') { Outcome::Right } else { Outcome::Wrong }
}

/// Memory mappings of process `pid` (Linux allows `vm.max_map_count`, 65,530 by default).
fn mappings(pid: u32) -> Result<usize> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/maps"))?.lines().count())
}

/// One unlabelled metric from the admin listener on `port`.
async fn metric(port: u16, name: &str) -> Result<u64> {
    let reply = switchyard_tests::client::get(&format!("http://127.0.0.1:{port}/metrics")).await;
    let text = reply.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .with_context(|| format!("no {name} in /metrics"))
}
