//! Benchmark: the latency Switchyard adds and the throughput it sustains, against direct access to
//! a fast upstream and against nginx doing a plain `proxy_pass`, all measured by wrk in one run
//! with the same 2 KB chat body. Three Switchyards run side by side: no plugins, the `noop` test
//! plugin (a fresh instance per request, the full request phase), and the default chain of
//! `switchyard.toml` (pii-redact → tier-router → cache-policy). The default chain is measured twice:
//! with a sampled request (temperature 0.7: not cacheable, so the whole chain and the upstream run
//! every time) and with a deterministic one (temperature 0: answered from the response cache).
//! Prints a markdown table for BENCHMARKS.md, with the CPU time each proxy process spent per
//! request. With `--baseline DIR` (an older build, prepared by `scripts/bench-proxy-baseline.sh`)
//! the older proxy runs the same rows with its own plugins, this build runs them with the older
//! plugins too, and a second table sets the two builds side by side; a third gives each
//! difference paired by round with its 95 % confidence interval, which says whether a gap is
//! larger than the machine's drift (use 10 rounds or more for a verdict).
//!
//! Usage: `bench-proxy [--seconds N] [--rounds N] [--baseline DIR]` (run by
//! `scripts/bench-proxy.sh`, which builds optimised and installs nginx and wrk).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use switchyard_tests::procs::{
    Guard, chain_section, default_chain_section, flag, median, plugin_dir, read_listening,
    spawn_mock, spawn_switchyard, wait_until_listening,
};
use switchyard_tests::wrk::{self, Measured, Target, chat_body_2kb, paired_difference};

fn main() -> Result<()> {
    let seconds = flag("--seconds", 10)?;
    let rounds = flag("--rounds", 3)?;
    let baseline = std::env::args()
        .skip_while(|a| a != "--baseline")
        .nth(1)
        .map(|dir| Baseline::open(Path::new(&dir)))
        .transpose()?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();

    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let plugins = plugin_dir(dir.path())?;
    let spawn = |bin: &Path, port, section: &str| {
        spawn_switchyard(bin, dir.path(), &mock_addr, port, section)
    };
    let mut proxies = vec![
        (18080, spawn(&bin_dir, 18080, "")?),
        (18081, spawn(&bin_dir, 18081, &noop_section(&plugins))?),
        (18082, spawn(&bin_dir, 18082, &default_chain_section(&plugins)?)?),
    ];
    if let Some(old) = &baseline {
        let chain = chain_section(&old.dir.join("switchyard.toml"), &old.plugins)?;
        proxies.push((18083, spawn(&old.dir, 18083, "")?));
        proxies.push((18084, spawn(&old.dir, 18084, &noop_section(&old.plugins))?));
        proxies.push((18085, spawn(&old.dir, 18085, &chain)?));
        proxies.push((18086, spawn(&bin_dir, 18086, &noop_section(&old.plugins))?));
        proxies.push((18087, spawn(&bin_dir, 18087, &chain)?));
    }
    let nginx = spawn_nginx(dir.path(), &mock_addr)?;
    // A proxy listens only once its plugins are compiled and probed: wait for each to answer.
    for port in proxies.iter().map(|(port, _)| *port).chain([18180]) {
        wait_until_listening(port, Duration::from_secs(120))?;
    }
    let pid = |port: u16| proxies.iter().find(|(p, _)| *p == port).map(|(_, g)| g.0.id());

    let sampled = chat_body_2kb(0.7);
    let deterministic = chat_body_2kb(0.0);
    let (plain, cached) = (dir.path().join("sampled.lua"), dir.path().join("cached.lua"));
    std::fs::write(&plain, wrk::script(&sampled, &[]))?;
    std::fs::write(&cached, wrk::script(&deterministic, &[]))?;
    let at = |port: u16| format!("http://127.0.0.1:{port}/v1/chat/completions");
    // Each target with the body its script sends (for the check that it answers).
    let target = |name: String, port: Option<u16>, cache_hit: bool| {
        let script = if cache_hit { cached.clone() } else { plain.clone() };
        let body = if cache_hit { deterministic.as_str() } else { sampled.as_str() };
        let url = port.map_or(format!("http://{mock_addr}/v1/chat/completions"), at);
        (Target { name, url, script, pid: port.and_then(pid) }, body, cache_hit)
    };
    let mut targets = vec![
        target("direct to upstream".into(), None, false),
        target("switchyard".into(), Some(18080), false),
        target("switchyard + no-op plugin".into(), Some(18081), false),
        target("switchyard + default chain".into(), Some(18082), false),
        target("switchyard + default chain, cache hit".into(), Some(18082), true),
        target("nginx proxy_pass".into(), Some(18180), false),
    ];
    if let Some(old) = &baseline {
        let rev = &old.commit;
        targets.extend([
            target(format!("{rev}: switchyard"), Some(18083), false),
            target(format!("{rev}: switchyard + no-op plugin"), Some(18084), false),
            target(format!("{rev}: switchyard + default chain"), Some(18085), false),
            target(format!("{rev}: switchyard + default chain, cache hit"), Some(18085), true),
            target(format!("switchyard + {rev}'s no-op plugin"), Some(18086), false),
            target(format!("switchyard + {rev}'s default chain"), Some(18087), false),
            target(format!("switchyard + {rev}'s default chain, cache hit"), Some(18087), true),
        ]);
    }
    for (target, body, _) in &targets {
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
    let hits: Vec<String> =
        targets.iter().filter(|t| t.2).map(|(target, _, _)| target.url.clone()).collect();
    let targets: Vec<Target> = targets.into_iter().map(|(target, _, _)| target).collect();
    // The cache-hit check runs after the warm-up, which fills the cache.
    let results = wrk::measure(&targets, rounds, seconds, || {
        hits.iter().try_for_each(|url| check_cache_hit(&deterministic, url))
    })?;
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
    drop((proxies, nginx, mock));
    print_table(&targets, &results, seconds, rounds, sampled.len());
    if let Some(old) = &baseline {
        print_against(&old.commit, &targets, &results);
    }
    Ok(())
}

/// An older build to compare with (`--baseline DIR`, made by
/// `scripts/bench-proxy-baseline.sh`): DIR holds its `switchyard` binary, its `switchyard.toml`,
/// its components in `plugins/` and its commit id in `commit`.
struct Baseline {
    dir: PathBuf,
    plugins: PathBuf,
    commit: String,
}

impl Baseline {
    fn open(dir: &Path) -> Result<Self> {
        let commit = std::fs::read_to_string(dir.join("commit"))
            .with_context(|| format!("{dir:?} is not a baseline (no commit file)"))?;
        for file in ["switchyard", "switchyard.toml", "plugins/noop.wasm"] {
            if !dir.join(file).exists() {
                bail!("the baseline {dir:?} has no {file}");
            }
        }
        Ok(Self { dir: dir.into(), plugins: dir.join("plugins"), commit: commit.trim().into() })
    }
}

/// Each baseline row beside this build's row with the same plugins: the baseline first.
fn print_against(rev: &str, targets: &[Target], results: &[Measured]) {
    let row = |name: &str| targets.iter().position(|t| t.name == name).map(|i| &results[i]);
    let pairs = [
        ("no plugins", "switchyard".to_string(), format!("{rev}: switchyard")),
        (
            "no-op plugin",
            format!("switchyard + {rev}'s no-op plugin"),
            format!("{rev}: switchyard + no-op plugin"),
        ),
        (
            "default chain",
            format!("switchyard + {rev}'s default chain"),
            format!("{rev}: switchyard + default chain"),
        ),
        (
            "default chain, cache hit",
            format!("switchyard + {rev}'s default chain, cache hit"),
            format!("{rev}: switchyard + default chain, cache hit"),
        ),
    ];
    println!("\nAgainst {rev}, both with {rev}'s plugins ({rev} / this build):\n");
    println!(
        "| path | p50, 1 conn | CPU µs/req, 1 conn | CPU µs/req, 64 conns | req/s, 64 conns | \
         req/s this / {rev}, median of rounds |"
    );
    println!("|---|---|---|---|---|---|");
    let cpu = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
    for (path, new, old) in &pairs {
        let (Some(new), Some(old)) = (row(new), row(old)) else { continue };
        let ratios = new.rps_rounds.iter().zip(&old.rps_rounds).map(|(n, o)| n / o);
        println!(
            "| {path} | {:.0} / {:.0} µs | {} / {} | {} / {} | {:.0} / {:.0} | {:.2}× |",
            old.p50_us,
            new.p50_us,
            cpu(old.cpu_us_1),
            cpu(new.cpu_us_1),
            cpu(old.cpu_us_64),
            cpu(new.cpu_us_64),
            old.rps_64,
            new.rps_64,
            median(ratios)
        );
    }
    println!(
        "\nThis build − {rev}, paired by round (mean of the per-round differences, 95 % \
         confidence interval; \"worse\" or \"better\" only when the interval excludes 0):\n"
    );
    println!("| path | p50, 1 conn, µs | CPU µs/req, 1 conn | CPU µs/req, 64 conns |");
    println!("|---|---|---|---|");
    for (path, new, old) in &pairs {
        let (Some(new), Some(old)) = (row(new), row(old)) else { continue };
        let cell = |n: Option<&Vec<f64>>, o: Option<&Vec<f64>>| {
            let Some((mean, half)) = n.zip(o).and_then(|(n, o)| paired_difference(n, o)) else {
                return "–".to_string();
            };
            let verdict = if mean - half > 0.0 {
                "worse"
            } else if mean + half < 0.0 {
                "better"
            } else {
                "within noise"
            };
            format!("{mean:+.1} ± {half:.1} ({verdict})")
        };
        println!(
            "| {path} | {} | {} | {} |",
            cell(Some(&new.p50_rounds), Some(&old.p50_rounds)),
            cell(new.cpu_1_rounds.as_ref(), old.cpu_1_rounds.as_ref()),
            cell(new.cpu_64_rounds.as_ref(), old.cpu_64_rounds.as_ref()),
        );
    }
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
        "| path | p50 (1 conn) | p99 (1 conn) | added p50 | added p99 | req/s (64 conns) | \
         req/s vs nginx | proxy CPU µs/req (1 conn / 64 conns) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (target, r) in targets.iter().zip(results) {
        let cpu = match (r.cpu_us_1, r.cpu_us_64) {
            (Some(one), Some(many)) => format!("{one:.1} / {many:.1}"),
            _ => "–".into(),
        };
        println!(
            "| {} | {:.0} µs | {:.0} µs | {:+.0} µs | {:+.0} µs | {:.0} | {:.2}× | {cpu} |",
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
