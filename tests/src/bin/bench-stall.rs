//! Benchmark: what a plugin that runs to its deadline does to the other requests of its worker.
//! Starts the mock upstream and Switchyard (one worker, so every connection shares one event
//! loop) with the `busy-loop` test plugin, which spins on requests that say "spin" until its
//! deadline (`--deadline-ms`, fail-closed) and passes every other request. Sends plain requests
//! one after another on one connection and records their latency, twice in one run: alone, and
//! while another connection keeps one spinning request in flight at all times. Prints a markdown
//! table of p50, p99 and max per round.
//!
//! Usage: `bench-stall [--requests N] [--deadline-ms N]` (run by `scripts/bench-stall.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use switchyard_tests::procs::{
    flag, read_listening, spawn_mock, spawn_switchyard_with, wait_until_listening,
};

const PORT: u16 = 18480;

fn main() -> Result<()> {
    let requests = flag("--requests", 2000)? as usize;
    let deadline_ms = flag("--deadline-ms", 50)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(switchyard_tests::wasm::BUSY_LOOP, plugins.join("loop.wasm"))?;
    let section = format!(
        "[plugins]\ndir = {:?}\nwatch = false\n[[plugin]]\nname = \"looper\"\nfile = \"loop.wasm\"\n\
         failure = \"closed\"\ntimeout_ms = {deadline_ms}\nconfig = {{ trigger = \"spin\" }}\n",
        plugins.display().to_string()
    );
    let proxy = spawn_switchyard_with(
        &bin_dir,
        dir.path(),
        &mock_addr,
        PORT,
        "workers = 1",
        &section,
        &[],
    )?;
    wait_until_listening(PORT, Duration::from_secs(120))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rows = runtime.block_on(async {
        let alone = round(requests, false).await?;
        let beside = round(requests, true).await?;
        anyhow::Ok([alone, beside])
    })?;
    drop(runtime);
    drop((proxy, mock));
    println!(
        "Switchyard with one worker; {requests} plain requests one after another on one \
         connection per round; the spinning plugin's deadline is {deadline_ms} ms.\n"
    );
    println!("| plain requests | p50 | p99 | max | spinning requests ended meanwhile |");
    println!("|---|---|---|---|---|");
    for (name, row) in ["alone", "beside a plugin spinning to its deadline"].iter().zip(&rows) {
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {:.1} ms | {} |",
            row.p50_us, row.p99_us, row.max_ms, row.spins
        );
    }
    Ok(())
}

struct Row {
    p50_us: f64,
    p99_us: f64,
    max_ms: f64,
    spins: usize,
}

async fn round(requests: usize, spinning: bool) -> Result<Row> {
    let stop = Arc::new(AtomicBool::new(false));
    let spins = Arc::new(AtomicUsize::new(0));
    let spinner = spinning.then(|| {
        let (stop, spins) = (Arc::clone(&stop), Arc::clone(&spins));
        tokio::spawn(async move {
            let mut sender = connect().await?;
            while !stop.load(Ordering::Relaxed) {
                if send(&mut sender, "spin please").await? != 500 {
                    bail!("a spinning request was not refused at its deadline");
                }
                spins.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    });
    if spinning {
        // The first spinner is in its plugin call before the measured requests start.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut sender = connect().await?;
    send(&mut sender, "warm up").await?;
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        if send(&mut sender, "just a question").await? != 200 {
            bail!("a plain request failed");
        }
        latencies.push(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(spinner) = spinner {
        spinner.await??;
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Row {
        p50_us: at(0.5).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
        max_ms: at(1.0).as_secs_f64() * 1e3,
        spins: spins.load(Ordering::Relaxed),
    })
}

async fn connect() -> Result<SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", PORT)).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One chat request saying `text`; its status once the whole answer is read.
async fn send(sender: &mut SendRequest<Full<Bytes>>, text: &str) -> Result<u16> {
    let body = switchyard_tests::chat_body("bench", text, false);
    let request = Request::post(format!("http://127.0.0.1:{PORT}/v1/chat/completions"))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}
