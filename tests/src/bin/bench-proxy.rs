//! Benchmark: the latency Switchyard adds and the throughput it sustains, against direct access to
//! a fast upstream and against nginx doing a plain `proxy_pass`, all measured by wrk in one run
//! with the same 2 KB chat body. A second Switchyard runs the `noop` test plugin (a fresh instance
//! per request, the full request phase) so the table shows a plugin's cost beside none.
//! Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-proxy [--seconds N] [--rounds N]` (run by `scripts/bench-proxy.sh`, which builds in release
//! and installs nginx and wrk).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

struct Target {
    name: &'static str,
    url: String,
}

struct Measured {
    p50_us: f64,
    p99_us: f64,
    rps_64: f64,
}

fn main() -> Result<()> {
    let seconds = flag("--seconds", 10)?;
    let rounds = flag("--rounds", 3)?;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();

    let mut mock = spawn_mock(&bin_dir)?;
    let mock_addr = read_listening(&mut mock.0)?;
    let switchyard = spawn_switchyard(&bin_dir, dir.path(), &mock_addr, None)?;
    let with_plugin =
        spawn_switchyard(&bin_dir, dir.path(), &mock_addr, Some(noop_plugin_dir(dir.path())?))?;
    let nginx = spawn_nginx(dir.path(), &mock_addr)?;
    std::thread::sleep(Duration::from_millis(500));

    let body = chat_body_2kb();
    let script = dir.path().join("post.lua");
    std::fs::write(&script, wrk_script(&body))?;
    let targets = [
        Target {
            name: "direct to upstream",
            url: format!("http://{mock_addr}/v1/chat/completions"),
        },
        Target { name: "switchyard", url: "http://127.0.0.1:18080/v1/chat/completions".into() },
        Target {
            name: "switchyard + no-op plugin",
            url: "http://127.0.0.1:18081/v1/chat/completions".into(),
        },
        Target {
            name: "nginx proxy_pass",
            url: "http://127.0.0.1:18180/v1/chat/completions".into(),
        },
    ];
    for target in &targets {
        let status = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-H", "content-type: application/json", "-d", &body])
            .arg(&target.url)
            .status()?;
        if !status.success() {
            bail!("{} does not answer at {}", target.name, target.url);
        }
    }
    for target in &targets {
        wrk(&script, &target.url, 1, 1, 2)?; // warm-up: pools, caches, page faults
    }
    // Rounds interleave the targets so background load hits all of them alike; each cell is the
    // median over rounds.
    let mut samples: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); targets.len()];
    for _ in 0..rounds {
        for (target, cells) in targets.iter().zip(&mut samples) {
            let one = wrk(&script, &target.url, 1, 1, seconds)?;
            let many = wrk(&script, &target.url, 2, 64, seconds)?;
            cells.push((one.0, one.1, many.2));
        }
    }
    let results: Vec<Measured> = samples
        .iter()
        .map(|cells| Measured {
            p50_us: median(cells.iter().map(|c| c.0)),
            p99_us: median(cells.iter().map(|c| c.1)),
            rps_64: median(cells.iter().map(|c| c.2)),
        })
        .collect();
    drop((switchyard, with_plugin, nginx, mock));
    print_table(&targets, &results, seconds, rounds, body.len());
    Ok(())
}

fn flag(name: &str, default: u64) -> Result<u64> {
    match std::env::args().skip_while(|a| a != name).nth(1) {
        Some(value) => value.parse().with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: nginx's master must stop its workers, switchyard drains.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn spawn_mock(bin_dir: &Path) -> Result<Guard> {
    let child = Command::new(bin_dir.join("mock-upstream"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting mock-upstream (build it with the same profile)")?;
    Ok(Guard(child))
}

fn read_listening(child: &mut Child) -> Result<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().context("mock stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    line.trim().strip_prefix("listening ").map(str::to_string).context("mock did not start")
}

/// A plugin dir holding the `noop` component that tests/build.rs built for this profile.
fn noop_plugin_dir(dir: &Path) -> Result<PathBuf> {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(switchyard_tests::wasm::NOOP, plugins.join("noop.wasm"))
        .with_context(|| format!("copying {}", switchyard_tests::wasm::NOOP))?;
    Ok(plugins)
}

/// Switchyard on 18080 (admin 18090), or with `plugins` on 18081 (admin 18091) running the no-op
/// plugin fail-closed, so any plugin failure would show up as a non-2xx in wrk and stop the run.
fn spawn_switchyard(
    bin_dir: &Path,
    dir: &Path,
    mock: &str,
    plugins: Option<PathBuf>,
) -> Result<Guard> {
    let (port, name, section) = match &plugins {
        None => (18080, "switchyard.toml", String::new()),
        Some(p) => (
            18081,
            "switchyard-plugin.toml",
            format!(
                "[plugins]\ndir = {:?}\nwatch = false\n[[plugin]]\nname = \"noop\"\n\
                 file = \"noop.wasm\"\nfailure = \"closed\"\ntimeout_ms = 100\n",
                p.display().to_string()
            ),
        ),
    };
    let config = dir.join(name);
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [[upstream]]\nname = \"mock\"\nbase_url = \"http://{mock}/v1\"\n[routing]\ndefault = \"mock\"\n\
             {section}",
            admin = port + 10
        ),
    )?;
    let child = Command::new(bin_dir.join("switchyard"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("SWITCHYARD_LOG", "warn")
        .spawn()
        .context("starting switchyard")?;
    Ok(Guard(child))
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

/// Runs wrk and returns (p50 µs, p99 µs, requests/s).
fn wrk(
    script: &Path,
    url: &str,
    threads: u32,
    conns: u32,
    seconds: u64,
) -> Result<(f64, f64, f64)> {
    let output = Command::new("wrk")
        .args(["--latency", "-t", &threads.to_string(), "-c", &conns.to_string()])
        .args(["-d", &format!("{seconds}s"), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw errors against {url}:\n{text}");
    }
    let percentile = |label: &str| -> Result<f64> {
        let line =
            text.lines().find(|l| l.trim_start().starts_with(label)).context("percentile")?;
        parse_duration_us(line.split_whitespace().nth(1).context("value")?)
    };
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .context("requests/sec")?
        .trim()
        .parse()?;
    Ok((percentile("50%")?, percentile("99%")?, rps))
}

fn parse_duration_us(value: &str) -> Result<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic()).context("unit")?;
    let number: f64 = value[..split].parse()?;
    Ok(match &value[split..] {
        "us" => number,
        "ms" => number * 1_000.0,
        "s" => number * 1_000_000.0,
        unit => bail!("unknown unit {unit}"),
    })
}

fn chat_body_2kb() -> String {
    let sentence = "Please summarise the quarterly report for the operations team and list risks. ";
    let text: String = sentence.repeat(2048 / sentence.len());
    serde_json::json!({
        "model": "bench", "temperature": 0,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}],
    })
    .to_string()
}

fn wrk_script(body: &str) -> String {
    let escaped = body.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "wrk.method = \"POST\"\nwrk.body = \"{escaped}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    )
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
