//! Benchmark: what a response-cache hit costs when the answer is in this replica's own cache
//! (moka) and when it is only in the shared level (`[cache] shared = true`: Redis over a unix
//! socket), next to a miss that goes to the mock upstream. Two proxies share one `redis-server`,
//! both with the cache-policy plugin: proxy A answers N distinct deterministic prompts (misses,
//! each stored in Redis off the request path); proxy B then gets each prompt once (a shared hit:
//! one Redis round trip, then kept locally) and once more (a local hit). One connection, kept
//! alive, requests one at a time. Prints a markdown table for BENCHMARKS.md.
//!
//! Usage: `bench-shared-cache [--requests N]` (run by `scripts/run-bench.sh bench-shared-cache`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use switchyard_tests::procs::{
    flag, read_listening, spawn_mock, spawn_redis, spawn_switchyard_with, wait_until_listening,
};

/// Ports of the two proxies (admin on port + 10).
const PORTS: [u16; 2] = [18290, 18291];

type Http = Client<HttpConnector, Full<Bytes>>;

fn main() -> Result<()> {
    let requests = flag("--requests", 500)? as usize;
    let dir = tempfile::tempdir()?;
    let bin_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let mut mock = spawn_mock(&bin_dir, &[])?;
    let mock_addr = read_listening(&mut mock.0)?;
    let (redis, socket) = spawn_redis(dir.path())?;
    let redis_url = format!("unix://{}", socket.display());
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    std::fs::copy(switchyard_tests::wasm::CACHE_POLICY, plugins.join("cache_policy.wasm"))?;
    let section = format!(
        "[state]\nbackend = \"redis\"\nurl_env = \"BENCH_REDIS_URL\"\n\
         [cache]\nshared = true\nshared_timeout_ms = 1000\n\
         [plugins]\ndir = {:?}\nwatch = false\n\
         [[plugin]]\nname = \"cache\"\nfile = \"cache_policy.wasm\"\nfailure = \"open\"\n",
        plugins.display().to_string()
    );
    let envs = [("BENCH_REDIS_URL", redis_url.as_str())];
    let mut proxies = Vec::new();
    for port in PORTS {
        proxies.push(spawn_switchyard_with(
            &bin_dir,
            dir.path(),
            &mock_addr,
            port,
            "",
            &section,
            &envs,
        )?);
    }
    for port in PORTS {
        wait_until_listening(port, Duration::from_secs(60))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let rows = runtime.block_on(measure(requests))?;
    drop((proxies, redis, mock));
    println!(
        "{requests} distinct deterministic chat requests (temperature 0), one at a time on one \
         kept-alive connection per proxy; two proxies over one redis-server (unix socket).\n"
    );
    println!("| lookup | answered by | p50 | p99 | `x-switchyard-cache` |\n|---|---|---|---|---|");
    for (name, by, mut times, header) in rows {
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!("| {name} | {by} | {:.0} µs | {:.0} µs | {header} |", at(0.5), at(0.99));
    }
    Ok(())
}

fn body(i: usize) -> String {
    serde_json::json!({"model": "m", "temperature": 0, "max_tokens": 16,
        "messages": [{"role": "user", "content": format!("benchmark prompt number {i}")}]})
    .to_string()
}

/// One request; its time in µs and its `x-switchyard-cache` header.
async fn timed(http: &Http, port: u16, body: String) -> Result<(f64, String)> {
    let request = http::Request::post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let start = Instant::now();
    let response = http.request(request).await?;
    let status = response.status();
    let cache = response
        .headers()
        .get("x-switchyard-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    response.into_body().collect().await?;
    let us = start.elapsed().as_secs_f64() * 1e6;
    if status != 200 {
        bail!("port {port} answered {status}");
    }
    Ok((us, cache))
}

type Row = (&'static str, &'static str, Vec<f64>, String);

/// Misses on A, then shared hits and local hits on B; every answer's cache header must be the
/// expected one (so each row measures what it says).
async fn measure(requests: usize) -> Result<Vec<Row>> {
    let http: Http = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let [a, b] = PORTS;
    // Warm both connections and plugin instances on a prompt not measured.
    for port in PORTS {
        timed(&http, port, body(usize::MAX)).await?;
    }
    let mut rows: Vec<Row> = Vec::new();
    for (name, by, port, expect) in [
        ("miss (A)", "mock upstream", a, "miss"),
        ("shared hit (B: Redis)", "Redis, 1 round trip", b, "hit"),
        ("local hit (B: moka)", "B's own cache", b, "hit"),
    ] {
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests {
            let (us, cache) = timed(&http, port, body(i)).await?;
            if cache != expect {
                bail!("{name}: request {i} was a cache {cache}, not a {expect}");
            }
            times.push(us);
        }
        rows.push((name, by, times, expect.to_string()));
        if port == a {
            wait_stored(&http, requests as u64 + 1).await?;
        }
    }
    Ok(rows)
}

/// Waits until A has written every answer to Redis (stores are off the request path).
async fn wait_stored(http: &Http, n: u64) -> Result<()> {
    let url = format!("http://127.0.0.1:{}/metrics", PORTS[0] + 10);
    let line = "switchyard_cache_shared_total{result=\"stored\"} ";
    for _ in 0..500 {
        let request = http::Request::get(&url).body(Full::new(Bytes::new()))?;
        let text = http.request(request).await?.into_body().collect().await?.to_bytes();
        let stored = String::from_utf8_lossy(&text)
            .lines()
            .find_map(|l| l.strip_prefix(line)?.parse::<u64>().ok())
            .unwrap_or(0);
        if stored >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("proxy A never stored {n} answers in Redis")
}
