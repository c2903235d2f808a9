//! The usage ledger's own cost per request: admission latency (p50/p99) at one request at a time,
//! and admit+settle throughput with 64 at once, for the memory store and a real redis-server
//! over a unix socket and over loopback TCP. Prints a table for BENCHMARKS.md.
//!
//! Run through `scripts/bench-ledger.sh [ITERATIONS]` (optimised build, machine line).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program fails loudly

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard::config::OnUnavailable;
use switchyard::ledger::{
    Ask, Backend, Clock, Ledger, Limits, MemoryStore, Options, RedisStore, Usage,
};
use switchyard::metrics::ledger::LedgerMetrics;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A named way to make the store under test.
type StoreMaker = (&'static str, Box<dyn Fn() -> Backend>);

const ASK: Ask = Ask { cache_hit: false, tokens: 500, cost_micros: 100 };
const USAGE: Usage = Usage { prompt_tokens: 100, completion_tokens: 200, cached_prompt_tokens: 0 };

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let iterations: usize =
        std::env::args().nth(1).map_or(20_000, |a| a.parse().expect("ITERATIONS"));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let port = free_port();
    let _unix = redis(&["--port", "0", "--unixsocket", socket.to_str().unwrap()]).await;
    let _tcp = redis(&["--port", &port.to_string(), "--bind", "127.0.0.1"]).await;
    println!(
        "| store | admit p50 µs | admit p99 µs | admit+settle p50 µs | admit+settle/s, 64 at once |"
    );
    println!("|---|---|---|---|---|");
    let stores: [StoreMaker; 3] = [
        ("memory", Box::new(|| Backend::Memory(Arc::new(MemoryStore::new(900_000))))),
        (
            "redis, unix socket",
            Box::new(move || redis_store(&format!("unix://{}", socket.display()))),
        ),
        (
            "redis, TCP 127.0.0.1",
            Box::new(move || redis_store(&format!("redis://127.0.0.1:{port}"))),
        ),
    ];
    for (name, store) in stores {
        let ledger = ledger(store());
        // Warm up: scripts loaded, connections pooled.
        for _ in 0..200 {
            cycle(&ledger).await;
        }
        let (admit, both) = sequential(&ledger, iterations).await;
        let rate = concurrent(&ledger, iterations, 64).await;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {rate:.0} |",
            pct(&admit, 0.5),
            pct(&admit, 0.99),
            pct(&both, 0.5)
        );
    }
}

fn ledger(store: Backend) -> Ledger {
    // Limits far above what the run uses, so every admission checks all four and passes.
    let limits = Limits {
        requests_per_minute: Some(u64::MAX / 4),
        tokens_per_minute: Some(u64::MAX / 4),
        max_concurrent: Some(1_000_000),
        budget_micros_per_day: Some(u64::MAX / 4),
    };
    let options = Options {
        on_unavailable: OnUnavailable::Closed,
        timeout: Duration::from_secs(5),
        clock: Clock::Store,
        prices: Default::default(),
        ..Options::default()
    };
    Ledger::new(store, vec![("acme".into(), limits, 1024)], options, LedgerMetrics::default())
}

fn redis_store(url: &str) -> Backend {
    Backend::Redis(Arc::new(RedisStore::new(url, "bench", 900_000, 1).unwrap()))
}

async fn cycle(ledger: &Ledger) {
    let admission = ledger.admit("acme", ASK).await.expect("admitted");
    admission.reservation.settle("local", None, &USAGE).await;
}

async fn sequential(ledger: &Ledger, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut admit = Vec::with_capacity(n);
    let mut both = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let admission = ledger.admit("acme", ASK).await.expect("admitted");
        admit.push(start.elapsed());
        admission.reservation.settle("local", None, &USAGE).await;
        both.push(start.elapsed());
    }
    (admit, both)
}

async fn concurrent(ledger: &Ledger, n: usize, tasks: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                for _ in 0..n / tasks {
                    cycle(&ledger).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    (n / tasks * tasks) as f64 / start.elapsed().as_secs_f64()
}

fn pct(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn redis(args: &[&str]) -> Child {
    let mut child = Command::new("redis-server")
        .args(["--save", "", "--appendonly", "no"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server (scripts/setup.sh installs it)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.to_ascii_lowercase().contains("ready to accept connections") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return child;
        }
    }
    panic!("redis-server exited before it was ready");
}
