//! Benchmark: what OpenTelemetry tracing adds to a request, in one run against the same mock
//! upstream with the same 2 KB chat body: tracing off, on at `sample_ratio = 1.0` and on at 0.01,
//! each traced proxy exporting to its own counting OTLP/HTTP sink in this process (a real
//! receiver: every export is decoded). p50/p99 at 1 connection, req/s at 64, then the spans each
//! sink received and the proxy's own exported/dropped counters, so the reader sees that export
//! really happened. Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-traces [--seconds N] [--rounds N]` (run by `scripts/bench-traces.sh`).

use std::cell::Cell;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use switchyard_tests::otlp::Sink;
use switchyard_tests::procs::{
    flag, read_listening, spawn_mock, spawn_switchyard, wait_until_listening,
};
use switchyard_tests::wrk::{self, Measured, Target, chat_body_2kb};

/// Ports of the three proxies (admin on port + 10): off, sample 1.0, sample 0.01.
const PORTS: [u16; 3] = [18380, 18381, 18382];

fn main() -> Result<()> {
    let seconds = flag("--seconds", 5)?;
    let rounds = flag("--rounds", 3)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let sinks = [Sink::start()?, Sink::start()?];
    let telemetry = |sink: &Sink, ratio: f64| {
        format!(
            "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"bench\"\nsample_ratio = {ratio:?}\n",
            sink.url
        )
    };
    let sections = [String::new(), telemetry(&sinks[0], 1.0), telemetry(&sinks[1], 0.01)];
    let mut proxies = Vec::new();
    for (port, section) in PORTS.iter().zip(&sections) {
        proxies.push(spawn_switchyard(&bin_dir, dir.path(), &mock_addr, *port, section)?);
    }
    for port in PORTS {
        wait_until_listening(port, Duration::from_secs(60))?;
    }
    let body = chat_body_2kb(0.7);
    let script = dir.path().join("chat.lua");
    std::fs::write(&script, wrk::script(&body, &[]))?;
    let names = ["tracing off", "tracing on, sample_ratio 1.0", "tracing on, sample_ratio 0.01"];
    let targets: Vec<Target> = names
        .iter()
        .zip(PORTS)
        .map(|(name, port)| Target {
            name: name.to_string(),
            url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
            script: script.clone(),
            pid: None,
        })
        .collect();
    // Spans counted from the end of the warm-up, so they match the measured requests.
    let before = [Cell::new(0), Cell::new(0)];
    let results = wrk::measure(&targets, rounds, seconds, || {
        for (sink, count) in sinks.iter().zip(&before) {
            count.set(sink.counts().1);
        }
        Ok(())
    })?;
    // The exporter sends what waited at most its batch delay (1 s) ago: let the last batch land.
    std::thread::sleep(Duration::from_secs(3));
    let metrics: Vec<String> = PORTS[1..].iter().map(|port| exporter_metrics(port + 10)).collect();
    drop((proxies, mock));
    println!(
        "Chat body: {} bytes; wrk {seconds}s per cell, median of {rounds} interleaved rounds; 1 \
         connection for latency, 64 connections (2 wrk threads) for throughput.\n",
        body.len()
    );
    wrk::print_overhead_table(&targets, &results);
    println!("\nWhat the OTLP sinks received during the measured runs:\n");
    for (i, sink) in sinks.iter().enumerate() {
        let (exports, spans, rejected) = sink.counts();
        let measured = spans - before[i].get();
        let requests = results[i + 1].requests.max(1);
        println!(
            "- {}: {measured} spans for {requests} requests ({:.3} per request); {exports} exports, \
             {rejected} rejected in the whole run; proxy counters: {}",
            names[i + 1],
            measured as f64 / requests as f64,
            metrics[i]
        );
    }
    print_goals(&results);
    Ok(())
}

/// The proxy's own `switchyard_trace_spans_*` counters from its admin `/metrics`.
fn exporter_metrics(admin_port: u16) -> String {
    let output = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{admin_port}/metrics")])
        .output();
    let text = output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let counters: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("switchyard_trace_spans_") || l.starts_with("switchyard_trace_exports_")
        })
        .collect();
    if counters.is_empty() { "(none found)".into() } else { format!("`{}`", counters.join("`, `")) }
}

fn print_goals(r: &[Measured]) {
    println!("\nGoals (against tracing off):\n");
    let added = r[1].p50_us - r[0].p50_us;
    let verdict = if added <= 10.0 { "met" } else { "not met" };
    println!(
        "- sample 1.0 adds {added:+.1} µs p50 (goal ≤ 10 µs: {verdict}), req/s {:.2}×",
        r[1].rps_64 / r[0].rps_64
    );
    println!(
        "- sample 0.01 adds {:+.1} µs p50, req/s {:.2}×",
        r[2].p50_us - r[0].p50_us,
        r[2].rps_64 / r[0].rps_64
    );
    let failed: u64 = r.iter().map(|m| m.non_2xx + m.socket_errors).sum();
    println!("- non-2xx answers and socket errors in all rows: {failed}");
}
