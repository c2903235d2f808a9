//! Benchmark: what per-tenant limits add to a request, in one run against the same mock upstream
//! with the same 2 KB chat body: a proxy with no tenant; one whose tenant has no limits; one whose
//! tenant has all four limits (generous, so nothing is refused) on the memory store; and the same
//! on a real `redis-server` over a unix socket; and that again (on its own `redis-server`) with
//! tier-router, whose budget rule imports `tenant-limits`, so each request also gives the plugin
//! the tenant's limits (from the ledger's snapshot: no extra round trip, docs/limits.md). p50/p99
//! at 1 connection, req/s at 64, non-2xx answers counted, and Redis commands per request (INFO
//! commandstats over the measured runs). Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-limits [--seconds N] [--rounds N]` (run by `scripts/bench-limits.sh`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_tests::procs::{
    flag, read_listening, spawn_mock, spawn_redis, spawn_switchyard_with, wait_until_listening,
};
use switchyard_tests::wrk::{self, Measured, Target, chat_body_2kb};

const KEY: &str = "bench-limits-key";
/// Ports of the five proxies (admin on port + 10).
const PORTS: [u16; 5] = [18280, 18281, 18282, 18283, 18284];

/// tier-router with the budget rule on (the budget is far from the threshold, so it routes as
/// without it): the host hands it the tenant's limits on every request. Failure, deadline and
/// isolation as in the shipped switchyard.toml (the default 5 ms deadline fails calls on a loaded
/// machine; until session 19 this row ran a fresh instance per request, which cost more than the
/// limits it meant to measure).
const ROUTER: &str = "[[plugin]]\nname = \"tier-router\"\nfile = \"tier_router.wasm\"\n\
                      failure = \"closed\"\ntimeout_ms = 20\nisolation = \"reuse\"\n[plugin.config]\nlocal_when_budget_below_usd = 0.5\n\
                      [plugin.config.tiers.local]\nupstream = \"local\"\n\
                      [plugin.config.tiers.hosted]\nupstream = \"hosted\"\n";

fn main() -> Result<()> {
    let seconds = flag("--seconds", 5)?;
    let rounds = flag("--rounds", 3)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let (redis, socket) = spawn_redis(dir.path())?;
    let redis_url = format!("unix://{}", socket.display());
    // The router's proxy gets a server of its own, so each row's commands are counted apart.
    let router_dir = dir.path().join("router");
    std::fs::create_dir_all(&router_dir)?;
    let (router_redis, router_socket) = spawn_redis(&router_dir)?;
    let router_url = format!("unix://{}", router_socket.display());
    std::fs::copy(switchyard_tests::wasm::TIER_ROUTER, router_dir.join("tier_router.wasm"))?;
    let envs = [
        ("BENCH_KEY", KEY),
        ("BENCH_REDIS_URL", redis_url.as_str()),
        ("BENCH_ROUTER_REDIS_URL", router_url.as_str()),
    ];
    let tenant = "[[tenant]]\nname = \"bench\"\nkey_env = \"BENCH_KEY\"\n";
    let limited = format!("{tenant}{}", generous_limits());
    let sections = [
        String::new(),
        tenant.to_string(),
        format!("{limited}[state]\nbackend = \"memory\"\n"),
        format!("{limited}[state]\nbackend = \"redis\"\nurl_env = \"BENCH_REDIS_URL\"\n"),
        format!(
            "{limited}[state]\nbackend = \"redis\"\nurl_env = \"BENCH_ROUTER_REDIS_URL\"\n\
             [plugins]\ndir = {:?}\nwatch = false\n{ROUTER}",
            router_dir.display().to_string()
        ),
    ];
    let mut proxies = Vec::new();
    for (port, section) in PORTS.iter().zip(&sections) {
        proxies.push(spawn_switchyard_with(
            &bin_dir,
            dir.path(),
            &mock_addr,
            *port,
            "",
            section,
            &envs,
        )?);
    }
    for port in PORTS {
        wait_until_listening(port, Duration::from_secs(60))?;
    }
    let body = chat_body_2kb(0.7);
    let (open, keyed) = (dir.path().join("open.lua"), dir.path().join("keyed.lua"));
    std::fs::write(&open, wrk::script(&body, &[]))?;
    std::fs::write(&keyed, wrk::script(&body, &[("Authorization", &format!("Bearer {KEY}"))]))?;
    let names = [
        "no tenant",
        "tenant, no limits",
        "tenant, 4 limits, memory",
        "tenant, 4 limits, redis (unix socket)",
        "tenant, 4 limits, redis, tier-router reading tenant-limits",
    ];
    let targets: Vec<Target> = names
        .iter()
        .zip(PORTS)
        .map(|(name, port)| Target {
            name: name.to_string(),
            url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
            script: if port == PORTS[0] { open.clone() } else { keyed.clone() },
            pid: None,
        })
        .collect();
    for (i, target) in targets.iter().enumerate() {
        check_answer(target, &body, i >= 2)?;
    }
    let results = wrk::measure(&targets, rounds, seconds, || {
        redis_cli(&socket, &["CONFIG", "RESETSTAT"])?;
        redis_cli(&router_socket, &["CONFIG", "RESETSTAT"]).map(drop)
    })?;
    let commands = redis_cli(&socket, &["INFO", "commandstats"])?;
    let router_commands = redis_cli(&router_socket, &["INFO", "commandstats"])?;
    drop((proxies, redis, router_redis, mock));
    println!(
        "Chat body: {} bytes; wrk {seconds}s per cell, median of {rounds} interleaved rounds; 1 \
         connection for latency, 64 connections (2 wrk threads) for throughput.\n",
        body.len()
    );
    wrk::print_overhead_table(&targets, &results);
    print_redis_calls(&commands, names[3], &results[3]);
    print_redis_calls(&router_commands, names[4], &results[4]);
    print_goals(&results);
    Ok(())
}

/// Every limit set far above what the run can reach, and a price, so each admission checks and
/// reserves all four (requests, tokens, a slot, worst-case cost) and each settlement prices usage.
fn generous_limits() -> &'static str {
    "requests_per_minute = 1000000000\ntokens_per_minute = 1000000000000\n\
     max_concurrent = 100000\nbudget_usd_per_day = 1000000000.0\n\
     [[price]]\nupstream = \"local\"\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 2.0\n"
}

/// One request by curl: it must answer 200, and a limited tenant's answer must carry the
/// x-ratelimit headers (proof that the limits are on the path being measured).
fn check_answer(target: &Target, body: &str, limited: bool) -> Result<()> {
    let output = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-H", "content-type: application/json"])
        .args(["-H", &format!("authorization: Bearer {KEY}"), "-d", body, &target.url])
        .output()
        .context("running curl")?;
    let headers = String::from_utf8_lossy(&output.stdout).to_lowercase();
    if !headers.starts_with("http/1.1 200") {
        bail!("{} does not answer 200:\n{headers}", target.name);
    }
    if limited != headers.contains("x-ratelimit-limit-requests") {
        bail!(
            "{}: x-ratelimit headers {} expected:\n{headers}",
            target.name,
            if limited { "" } else { "not" }
        );
    }
    Ok(())
}

fn redis_cli(socket: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("redis-cli")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .context("running redis-cli")?;
    if !output.status.success() {
        bail!("redis-cli {args:?} failed");
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The Redis commands the proxy sent during the measured runs (INFO commandstats, reset after the
/// warm-up), per request wrk completed against the Redis-backed proxy.
fn print_redis_calls(commandstats: &str, name: &str, redis_row: &Measured) {
    println!(
        "\nRedis commands during the measured runs ({} requests to the row \"{}\"). Round trips \
         are the `evalsha` calls (admission on the request path, settlement after the response); \
         the other commands run inside those scripts:\n",
        redis_row.requests, name
    );
    for line in commandstats.lines() {
        let Some((name, stats)) =
            line.trim().strip_prefix("cmdstat_").and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |key: &str| -> f64 {
            stats.split(',').find_map(|kv| kv.strip_prefix(key)?.parse().ok()).unwrap_or(0.0)
        };
        let (calls, usec) = (field("calls="), field("usec="));
        if name == "info" || name.starts_with("config") {
            continue; // redis-cli's own
        }
        let per_request = redis_row.requests.max(1) as f64;
        println!(
            "- `{name}`: {calls} calls, {:.2} per request, {:.1} µs of Redis's time per request",
            calls / per_request,
            usec / per_request
        );
    }
}

/// The goals, computed from the table (limits' own cost: against the tenant without limits).
fn print_goals(r: &[Measured]) {
    let (none, plain, memory, redis) = (&r[0], &r[1], &r[2], &r[3]);
    let refused: u64 = r.iter().map(|m| m.non_2xx + m.socket_errors).sum();
    println!("\nGoals (limits against the tenant without limits):\n");
    let added = memory.p50_us - plain.p50_us;
    println!(
        "- memory adds {added:+.1} µs p50 (goal ≤ 15 µs: {}); {:+.1} µs against no tenant",
        met(added <= 15.0),
        memory.p50_us - none.p50_us
    );
    println!("- redis adds {:+.1} µs p50", redis.p50_us - plain.p50_us);
    for (name, m) in [("memory", memory), ("redis", redis)] {
        let ratio = m.rps_64 / plain.rps_64;
        println!(
            "- {name} throughput {ratio:.2}× the tenant without limits (goal ≥ 0.8×: {}); {:.2}× no tenant",
            met(ratio >= 0.8),
            m.rps_64 / none.rps_64
        );
    }
    println!("- non-2xx answers and socket errors in all rows: {refused}");
    println!(
        "\nThroughput ratios round by round (each round measures the rows one after another):\n"
    );
    for (name, m) in [("memory", memory), ("redis", redis)] {
        for (against, base) in [("the tenant without limits", plain), ("no tenant", none)] {
            println!("- {name} against {against}: {}", per_round(m, base));
        }
    }
}

/// `m`'s req/s divided by `base`'s in each round, then their median and range.
fn per_round(m: &Measured, base: &Measured) -> String {
    let ratios: Vec<f64> = m.rps_rounds.iter().zip(&base.rps_rounds).map(|(a, b)| a / b).collect();
    let text: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    let (lo, hi) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    format!(
        "{} (median {:.2}, lowest {lo:.2}, highest {hi:.2})",
        text.join(", "),
        switchyard_tests::procs::median(ratios.iter().copied())
    )
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}
