//! Benchmark: the latency Switchyard adds and the throughput it sustains, against direct access to
//! a fast upstream and against nginx doing a plain `proxy_pass`, all measured by wrk in one run
//! with the same 2 KB chat body. Three Switchyards run side by side: no plugins, the `noop` test
//! plugin (a fresh instance per request, the full request phase), and the default chain of
//! `switchyard.toml` (pii-redact → tier-router → cache-policy). The default chain is measured twice:
//! with a sampled request (temperature 0.7: not cacheable, so the whole chain and the upstream run
//! every time) and with a deterministic one (temperature 0: answered from the response cache).
//! Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-proxy [--seconds N] [--rounds N]` (run by `scripts/bench-proxy.sh`, which builds in release
//! and installs nginx and wrk).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_tests::procs::{
    Guard, default_chain_section, flag, plugin_dir, read_listening, spawn_mock, spawn_switchyard,
    wait_until_listening,
};
use switchyard_tests::wrk::{self, Measured, Target, chat_body_2kb};

fn main() -> Result<()> {
    let seconds = flag("--seconds", 10)?;
    let rounds = flag("--rounds", 3)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();

    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let plugins = plugin_dir(dir.path())?;
    let switchyard = spawn_switchyard(&bin_dir, dir.path(), &mock_addr, 18080, "")?;
    let with_noop =
        spawn_switchyard(&bin_dir, dir.path(), &mock_addr, 18081, &noop_section(&plugins))?;
    let with_chain = spawn_switchyard(
        &bin_dir,
        dir.path(),
        &mock_addr,
        18082,
        &default_chain_section(&plugins)?,
    )?;
    let nginx = spawn_nginx(dir.path(), &mock_addr)?;
    // A proxy listens only once its plugins are compiled and probed: wait for each to answer.
    for port in [18080u16, 18081, 18082, 18180] {
        wait_until_listening(port, Duration::from_secs(120))?;
    }

    let sampled = chat_body_2kb(0.7);
    let deterministic = chat_body_2kb(0.0);
    let (plain, cached) = (dir.path().join("sampled.lua"), dir.path().join("cached.lua"));
    std::fs::write(&plain, wrk::script(&sampled, &[]))?;
    std::fs::write(&cached, wrk::script(&deterministic, &[]))?;
    let at = |port: u16| format!("http://127.0.0.1:{port}/v1/chat/completions");
    // Each target with the body its script sends (for the check that it answers).
    let target = |name: &str, url, cache_hit: bool| {
        let script = if cache_hit { cached.clone() } else { plain.clone() };
        let body = if cache_hit { deterministic.as_str() } else { sampled.as_str() };
        (Target { name: name.into(), url, script }, body)
    };
    let targets = [
        target("direct to upstream", format!("http://{mock_addr}/v1/chat/completions"), false),
        target("switchyard", at(18080), false),
        target("switchyard + no-op plugin", at(18081), false),
        target("switchyard + default chain", at(18082), false),
        target("switchyard + default chain, cache hit", at(18082), true),
        target("nginx proxy_pass", at(18180), false),
    ];
    for (target, body) in &targets {
        let output = Command::new("curl")
            .args(["-sf", "-D", "-", "-o", "/dev/null", "-H", "content-type: application/json"])
            .args(["-d", body])
            .arg(&target.url)
            .output()?;
        if !output.status.success() {
            bail!("{} does not answer at {}", target.name, target.url);
        }
        let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
        if target.name.contains("default chain") && !headers.contains("x-switchyard-cache") {
            bail!("{} did not run the response cache:\n{headers}", target.name);
        }
    }
    let targets: Vec<Target> = targets.into_iter().map(|(target, _)| target).collect();
    // The cache-hit check runs after the warm-up, which fills the cache.
    let results =
        wrk::measure(&targets, rounds, seconds, || check_cache_hit(&deterministic, &at(18082)))?;
    if let Some((target, r)) =
        targets.iter().zip(&results).find(|(_, r)| r.non_2xx + r.socket_errors > 0)
    {
        bail!(
            "wrk saw {} non-2xx and {} socket errors against {}",
            r.non_2xx,
            r.socket_errors,
            target.name
        );
    }
    drop((switchyard, with_noop, with_chain, nginx, mock));
    print_table(&targets, &results, seconds, rounds, sampled.len());
    Ok(())
}

fn check_cache_hit(body: &str, url: &str) -> Result<()> {
    let hit = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-H", "content-type: application/json"])
        .args(["-d", body, url])
        .output()?;
    if !String::from_utf8_lossy(&hit.stdout).to_lowercase().contains("x-switchyard-cache: hit") {
        bail!("the deterministic request is not served from the cache");
    }
    Ok(())
}

/// The no-op plugin, fail-closed, so any plugin failure would show up as a non-2xx in wrk and
/// stop the run.
fn noop_section(plugins: &Path) -> String {
    format!(
        "[plugins]\ndir = {:?}\nwatch = false\n[[plugin]]\nname = \"noop\"\n\
         file = \"noop.wasm\"\nfailure = \"closed\"\ntimeout_ms = 100\n",
        plugins.display().to_string()
    )
}

fn spawn_nginx(dir: &Path, mock: &str) -> Result<Guard> {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\npid {0}/nginx.pid;\nerror_log {0}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {0};\n  proxy_temp_path {0};\n\
             upstream mock {{ server {mock}; keepalive 64; }}\n\
             server {{\n    listen 127.0.0.1:18180;\n    location / {{\n\
             proxy_pass http://mock;\n      proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n",
            dir.display()
        ),
    )?;
    let child = Command::new(nginx_binary())
        .args(["-e", "stderr", "-c"])
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .spawn()
        .context("starting nginx (apt-get install nginx-light)")?;
    Ok(Guard(child))
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

fn print_table(
    targets: &[Target],
    results: &[Measured],
    seconds: u64,
    rounds: u64,
    body_len: usize,
) {
    let direct = &results[0];
    let nginx = targets.iter().position(|t| t.name == "nginx proxy_pass").unwrap_or(0);
    let nginx_rps = results[nginx].rps_64;
    println!(
        "Chat body: {body_len} bytes; wrk {seconds}s per cell, median of {rounds} interleaved \
         rounds; 1 connection for latency, 64 connections (2 wrk threads) for throughput.\n"
    );
    println!(
        "| path | p50 (1 conn) | p99 (1 conn) | added p50 | added p99 | req/s (64 conns) | req/s vs nginx |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (target, r) in targets.iter().zip(results) {
        println!(
            "| {} | {:.0} µs | {:.0} µs | {:+.0} µs | {:+.0} µs | {:.0} | {:.2}× |",
            target.name,
            r.p50_us,
            r.p99_us,
            r.p50_us - direct.p50_us,
            r.p99_us - direct.p99_us,
            r.rps_64,
            r.rps_64 / nginx_rps
        );
    }
}
