//! Soak: the `switchyard` binary with the default chain of `switchyard.toml` (pii-redact →
//! tier-router → cache-policy), a child process in front of mock upstreams on loopback, under
//! mixed load for a set time, while the local upstream is killed and restarted and the plugins are
//! hot-swapped 20 times. The RSS checked is the proxy process's alone (the load generator and the
//! mocks run in this process; its own RSS is printed beside). Prints a markdown table and exits
//! non-zero when a check fails.
//!
//! Usage: `soak [--seconds N] [--swaps N] [--strict-deadlines] [--no-rebuilt] [--no-outage]` (run
//! by `scripts/soak.sh`; defaults 600 s and 20 swaps; `--no-rebuilt` uploads only the built
//! components as they are, never a new sha256; `--no-outage` never kills the local upstream).
//!
//! Which requests "should have succeeded": all of them, except
//! - requests in flight at the moment the local upstream is killed (their upstream connection
//!   breaks; a streamed answer already sent cannot move to another upstream), and
//! - requests carrying PII that start while the local upstream is down: the router pins them to
//!   the local tier (`residency = "local-only"`), so they must fail rather than fall back.
//!
//! Clean requests started while the local upstream is down must succeed via the hosted fallback.
//! Whatever the timing, an answer that is wrong (not the mock's echo of the request, PII not
//! restored, or a PII request answered by the hosted tier) and an upstream that saw raw PII are
//! always failures.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use switchyard_tests::client::stream_text;
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::procs::{Guard, rss_kib, status_kib};
use switchyard_tests::wasm;

const TOKEN: &str = "soak-admin-token";
/// No tight bounds: a request only fails on time when it is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const SWAPS: usize = 20;
/// How long the local upstream stays down.
const OUTAGE: Duration = Duration::from_secs(3);
/// Quiet time before the idle RSS sample.
const IDLE_SETTLE: Duration = Duration::from_secs(12);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Plain,
    Streamed,
    Pii,
    Cached,
    Disconnect,
    SlowReader,
    Swap,
    SwapRejected,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Plain => "plain chat",
            Class::Streamed => "streamed chat",
            Class::Pii => "chat with PII (plain and streamed)",
            Class::Cached => "deterministic (cacheable)",
            Class::Disconnect => "client disconnects mid-stream",
            Class::SlowReader => "slow reader (110 KB stream)",
            Class::Swap => "plugin hot swap (good component)",
            Class::SwapRejected => "plugin hot swap (rejected on purpose)",
        }
    }
}

enum Verdict {
    Ok,
    /// An error answer or a transport failure: allowed only in the outage rules above.
    Failed(String),
    /// Wrong content: never allowed.
    Wrong(String),
    /// A plugin missed its wall-clock deadline (`timeout_ms` in switchyard.toml: 20-50 ms): on a
    /// host whose cores are oversubscribed this measures the host, not the proxy. Counted and
    /// shown, not failed, unless `--strict-deadlines`.
    PluginDeadline(String),
}

#[derive(Default)]
struct Events {
    kill: Option<Instant>,
    restarted: Option<Instant>,
}

impl Events {
    /// Whether a failure of a request started at `started` is excused by the outage rules.
    fn excuses(&self, pii: bool, started: Instant) -> bool {
        let in_flight_at_kill = self.kill.is_some_and(|k| started <= k);
        let pii_while_down = pii
            && self.kill.is_some_and(|k| started >= k)
            && self.restarted.is_none_or(|r| started <= r);
        in_flight_at_kill || pii_while_down
    }
}

/// Counts per class, kept as they come so that a long run takes no memory for them.
#[derive(Default, Clone)]
struct Row {
    sent: usize,
    ok: usize,
    allowed: usize,
    unexpected: usize,
    wrong: usize,
    deadline: usize,
    hits: usize,
}

struct Ctx {
    proxy_url: String,
    deadline: Instant,
    events: Mutex<Events>,
    rows: Mutex<BTreeMap<Class, Row>>,
    /// The first few failures and wrong answers, to print.
    examples: Mutex<Vec<String>>,
    /// The first [`DEADLINE_EXAMPLES`] missed plugin deadlines, printed after the failures:
    /// informational, they must not crowd out a real failure.
    deadline_examples: Mutex<Vec<String>>,
}

/// Missed plugin deadlines shown after the failures.
const DEADLINE_EXAMPLES: usize = 3;

impl Ctx {
    /// Counts a finished request. A request finishing before the kill was not in flight at it,
    /// so the outage rules can be applied now.
    fn record(&self, class: Class, pii: bool, started: Instant, verdict: Verdict, hit: bool) {
        let excused = self.events.lock().is_ok_and(|e| e.excuses(pii, started));
        let Ok(mut rows) = self.rows.lock() else { return };
        let row = rows.entry(class).or_default();
        row.sent += 1;
        row.hits += usize::from(hit);
        let (example, informational) = match verdict {
            Verdict::Ok => {
                row.ok += 1;
                (None, false)
            }
            Verdict::Failed(_) if excused => {
                row.allowed += 1;
                (None, false)
            }
            Verdict::Failed(why) => {
                row.unexpected += 1;
                (Some(format!("{}: {why}", class.name())), false)
            }
            Verdict::Wrong(why) => {
                row.wrong += 1;
                (Some(format!("{} (wrong): {why}", class.name())), false)
            }
            Verdict::PluginDeadline(why) => {
                row.deadline += 1;
                (Some(format!("{} (plugin deadline): {why}", class.name())), true)
            }
        };
        drop(rows);
        let (list, cap) = match informational {
            true => (&self.deadline_examples, DEADLINE_EXAMPLES),
            false => (&self.examples, 20),
        };
        if let (Some(example), Ok(mut list)) = (example, list.lock())
            && list.len() < cap
        {
            list.push(example);
        }
    }
}

fn main() -> Result<()> {
    let seconds = flag("--seconds", 600)?;
    let swaps = flag("--swaps", SWAPS as u64)? as usize;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(soak(seconds, swaps))
}

fn flag(name: &str, default: u64) -> Result<u64> {
    match std::env::args().skip_while(|a| a != name).nth(1) {
        Some(v) => v.parse().with_context(|| format!("{name} takes a whole number")),
        None => Ok(default),
    }
}

async fn soak(seconds: u64, planned_swaps: usize) -> Result<()> {
    let mut local =
        MockUpstream::start("local", Behavior::SlowIfAsked(Duration::from_millis(20))).await;
    let hosted = MockUpstream::start("hosted", Behavior::Normal).await;
    let dir = tempfile::tempdir()?;
    for (file, built) in wasm::BUILT_IN {
        std::fs::copy(built, dir.path().join(file)).with_context(|| format!("copying {built}"))?;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard.toml");
    let (api_port, admin_port) = (free_port()?, free_port()?);
    let config = std::fs::read_to_string(shipped)?
        .replacen("listen = \"127.0.0.1:8080\"", &format!("listen = \"127.0.0.1:{api_port}\""), 1)
        .replacen("listen = \"127.0.0.1:8090\"", &format!("listen = \"127.0.0.1:{admin_port}\""), 1)
        .replace("http://127.0.0.1:8081/v1", &local.base_url())
        .replace("https://api.openai.com/v1", &hosted.base_url())
        .replacen(
            "dir = \".cache/plugins\"",
            &format!("dir = {:?}\nwatch = false", dir.path().display().to_string()),
            1,
        );
    let proxy = Child::start(dir.path(), &config, api_port, admin_port)?;
    let (proxy_port, pid) = (api_port, proxy.pid());
    wait_ready(&proxy).await?;
    let idle_metrics = metrics(&proxy).await?;

    let start = Instant::now();
    let duration = Duration::from_secs(seconds);
    let warmup = (duration * 15 / 100).max(Duration::from_secs(10)).min(duration / 2);
    let ctx = Arc::new(Ctx {
        proxy_url: proxy.url("/v1/chat/completions"),
        deadline: start + duration,
        events: Mutex::new(Events::default()),
        rows: Mutex::new(BTreeMap::new()),
        examples: Mutex::new(Vec::new()),
        deadline_examples: Mutex::new(Vec::new()),
    });

    let mut workers = Vec::new();
    let spawn_class = |class: Class, n: usize, workers: &mut Vec<_>| {
        for w in 0..n {
            let ctx = Arc::clone(&ctx);
            workers.push(tokio::spawn(worker(ctx, class, w)));
        }
    };
    spawn_class(Class::Plain, 3, &mut workers);
    spawn_class(Class::Streamed, 3, &mut workers);
    spawn_class(Class::Pii, 4, &mut workers);
    spawn_class(Class::Cached, 2, &mut workers);
    spawn_class(Class::Disconnect, 2, &mut workers);
    spawn_class(Class::SlowReader, 2, &mut workers);

    // Swaps spread over the run, the first three (one per plugin) inside the warm-up.
    let swap_ctx = Arc::clone(&ctx);
    let admin = proxy.admin_url("/admin/plugins");
    let swaps = tokio::spawn(async move {
        for i in 0..planned_swaps {
            let spread = i as f64 / planned_swaps.saturating_sub(1).max(1) as f64;
            let at = start + duration.mul_f64(0.05 + 0.85 * spread);
            tokio::time::sleep_until(at.into()).await;
            swap(&swap_ctx, &admin, i).await;
        }
    });

    // PII audit: what the upstreams received, drained as it comes so the record stays small.
    let leaks = Arc::new(Mutex::new(Vec::<String>::new()));
    let audit = |local: &MockUpstream, hosted: &MockUpstream| {
        audit_received(local, hosted, &leaks);
    };

    // The mocks' records are drained every half second all through the run: a backlog would
    // count in the RSS being measured.
    let tick = |from: Instant| {
        let mut next = from + duration / 10;
        move |now: Instant| -> Result<()> {
            if now >= next {
                let (at, rss, parts) = ((now - start).as_secs(), rss_kib(pid)?, rss_parts(pid));
                let own = rss_kib(std::process::id())?;
                eprintln!(
                    "soak: {at:>4} s, proxy RSS {rss} KiB ({parts}); load generator {own} KiB"
                );
                while next <= now {
                    next += duration / 10;
                }
            }
            Ok(())
        }
    };
    let mut progress = tick(start);
    // RSS every half second under load: the check compares medians of windows, since a point
    // sample can land on a plugin compilation's transient peak (each swap compiles).
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut run_until = async |until: Instant, local: &MockUpstream| -> Result<()> {
        while Instant::now() < until {
            let step = (Instant::now() + Duration::from_millis(500)).min(until);
            tokio::time::sleep_until(step.into()).await;
            audit(local, &hosted);
            samples.push((start.elapsed(), rss_kib(pid)?));
            progress(Instant::now())?;
        }
        Ok(())
    };
    run_until(start + warmup, &local).await?;
    let rss_warm = rss_kib(pid)?;
    run_until(start + duration * 45 / 100, &local).await?;
    if !std::env::args().any(|a| a == "--no-outage") {
        set_event(&ctx, |e| e.kill = Some(Instant::now()));
        local.kill();
        run_until(Instant::now() + OUTAGE, &local).await?;
        local.restart().context("restarting the local mock")?;
        set_event(&ctx, |e| e.restarted = Some(Instant::now()));
    }
    run_until(ctx.deadline, &local).await?;
    let rss_end_loaded = rss_kib(pid)?;
    for w in workers {
        w.await?;
    }
    swaps.await?;
    audit(&local, &hosted);

    // Back to idle: every client connection closed, every instance slot free again.
    let idle_deadline = Instant::now() + Duration::from_secs(30);
    let mut open = open_connections(proxy_port)?;
    while open > 0 && Instant::now() < idle_deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = open_connections(proxy_port)?;
    }
    let end_metrics = metrics(&proxy).await?;
    // Idle RSS once the allocator has had its decay time (jemalloc: 10 s) to return what the
    // load freed.
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_idle = rss_kib(pid)?;
    let window = duration / 10;
    let rss_windows = (
        RssWindow::of(&samples, warmup, warmup + window),
        RssWindow::of(&samples, duration - window, duration),
    );
    let tenths: Vec<Option<RssWindow>> =
        (0..10u32).map(|i| RssWindow::of(&samples, window * i, window * (i + 1))).collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let rows = ctx.rows.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let mut examples = ctx.examples.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    examples.extend(ctx.deadline_examples.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone());
    let leaks = leaks.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let ok = report(&Report {
        seconds,
        rows: &rows,
        examples: &examples,
        leaks: &leaks,
        rss: (rss_warm, rss_end_loaded, rss_idle),
        rss_windows,
        tenths: &tenths,
        planned_swaps,
        strict: std::env::args().any(|a| a == "--strict-deadlines"),
        open,
        idle_metrics: &idle_metrics,
        end_metrics: &end_metrics,
        load: load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    });
    let log = proxy.stop()?;
    if !ok {
        eprintln!("soak: checks failed; the proxy's last log lines:");
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(20)..] {
            eprintln!("  {line}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// The `switchyard` binary next to this one (`scripts/soak.sh` builds both), serving `config`;
/// its log (warnings and errors) goes to a file in `dir`.
struct Child {
    process: Guard,
    api_port: u16,
    admin_port: u16,
    log: std::path::PathBuf,
}

impl Child {
    fn start(dir: &Path, config: &str, api_port: u16, admin_port: u16) -> Result<Self> {
        let bin = std::env::current_exe()?.with_file_name("switchyard");
        let (path, log) = (dir.join("switchyard.toml"), dir.join("switchyard.log"));
        std::fs::write(&path, config)?;
        let process = std::process::Command::new(&bin)
            .args(["serve", "--config"])
            .arg(&path)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SWITCHYARD_LOG", "warn")
            .env("OPENAI_API_KEY", "sk-soak-hosted")
            .env("SWITCHYARD_ADMIN_TOKEN", TOKEN)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} (build it with the soak)", bin.display()))?;
        Ok(Self { process: Guard(process), api_port, admin_port, log })
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// SIGTERM (the proxy drains), wait, and the proxy's log.
    fn stop(self) -> Result<String> {
        let log = self.log.clone();
        drop(self.process);
        Ok(std::fs::read_to_string(log)?)
    }
}

/// A loopback port nothing listens on now (the proxy binds it a moment later).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(proxy: &Child) -> Result<()> {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = chat("smollm2", "soak readiness", false, 0.7);
    loop {
        if let Ok((status, _, _)) = post(&client, &proxy.url("/v1/chat/completions"), &body).await
            && status == StatusCode::OK
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the proxy did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

fn chat(model: &str, text: &str, stream: bool, temperature: f64) -> String {
    json!({"model": model, "stream": stream, "temperature": temperature,
        "messages": [{"role": "user", "content": text}]})
    .to_string()
}

fn request(url: &str, body: &str) -> Result<Request<Full<Bytes>>> {
    Ok(Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?)
}

/// Status, headers and whole body.
async fn post(
    client: &HttpClient,
    url: &str,
    body: &str,
) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
    let response = client.request(request(url, body)?).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The answer text of a plain or streamed reply.
fn answer_of(headers: &http::HeaderMap, body: &[u8]) -> String {
    if header(headers, "content-type").starts_with("text/event-stream") {
        stream_text(body)
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["choices"][0]["message"]["content"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One client of `class` sending requests back to back until the deadline.
async fn worker(ctx: Arc<Ctx>, class: Class, w: usize) {
    let client = http_client();
    let mut n = 0usize;
    while Instant::now() < ctx.deadline {
        let started = Instant::now();
        let pii = class == Class::Pii;
        let run = one(&ctx, &client, class, w, n);
        let (verdict, hit) = match tokio::time::timeout(REQUEST_TIMEOUT, run).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => (Verdict::Failed(format!("transport: {e:#}")), false),
            Err(_) => (Verdict::Failed("no answer within 60 s".into()), false),
        };
        if matches!(verdict, Verdict::Failed(_)) {
            // Do not spin on a failing path; a short pause keeps the count bounded.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ctx.record(class, pii, started, verdict, hit);
        n += 1;
    }
}

async fn one(
    ctx: &Ctx,
    client: &HttpClient,
    class: Class,
    w: usize,
    n: usize,
) -> Result<(Verdict, bool)> {
    let url = &ctx.proxy_url;
    // A plugin that misses its deadline after a stream was committed ends it with an error event
    // (fail-closed): a 200 whose body carries `plugin_failed ... (timeout)`, counted like a 500
    // for the same reason, not as a wrong answer.
    let deadline_mid_stream = |body: &[u8]| {
        let text = String::from_utf8_lossy(body);
        (text.contains("\"plugin_failed\"") && text.contains("(timeout)"))
            .then(|| Verdict::PluginDeadline(format!("mid-stream: {text}")))
    };
    let expect_echo = |headers: &http::HeaderMap, body: &[u8], text: &str| -> Verdict {
        if let Some(verdict) = deadline_mid_stream(body) {
            return verdict;
        }
        let got = answer_of(headers, body);
        let streamed = header(headers, "content-type").starts_with("text/event-stream");
        if streamed && !String::from_utf8_lossy(body).contains("data: [DONE]") {
            return Verdict::Failed(format!("stream ended without [DONE]: {got:?}"));
        }
        if got == format!("local heard: {text}") || got == format!("hosted heard: {text}") {
            Verdict::Ok
        } else {
            Verdict::Wrong(format!("answer {got:?} for {text:?}"))
        }
    };
    let status_failed = |status: StatusCode, body: &[u8]| {
        let text = String::from_utf8_lossy(body);
        if text.contains("\"plugin_failed\"") && text.contains("(timeout)") {
            Verdict::PluginDeadline(format!("{status}: {text}"))
        } else {
            Verdict::Failed(format!("{status}: {text}"))
        }
    };
    Ok(match class {
        Class::Plain | Class::Streamed => {
            let text = format!("soak {} {w}.{n}: summarise the quarterly report", class.name());
            let model = if n.is_multiple_of(2) { "fast" } else { "smollm2" };
            let body = chat(model, &text, class == Class::Streamed, 0.7);
            let (status, headers, body) = post(client, url, &body).await?;
            if status != StatusCode::OK {
                return Ok((status_failed(status, &body), false));
            }
            (expect_echo(&headers, &body, &text), false)
        }
        Class::Pii => {
            let text = format!(
                "soak pii {w}.{n}: mail user{w}x{n}@soak-mail.com or call +44 20 7946 {:04}",
                n % 10_000
            );
            let body = chat("auto", &text, n.is_multiple_of(2), 0.5);
            let (status, headers, body) = post(client, url, &body).await?;
            if status != StatusCode::OK {
                return Ok((status_failed(status, &body), false));
            }
            let got = answer_of(&headers, &body);
            let verdict = if let Some(verdict) = deadline_mid_stream(&body) {
                verdict
            } else if header(&headers, "x-switchyard-upstream") != "local" {
                Verdict::Wrong(format!(
                    "PII answered by {:?}",
                    header(&headers, "x-switchyard-upstream")
                ))
            } else if got != format!("local heard: {text}") {
                // The end of the body says how a cut-off stream ended (an error event or none).
                let raw = String::from_utf8_lossy(&body);
                let tail: String =
                    raw.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
                Verdict::Wrong(format!("PII answer {got:?} for {text:?}; body ends {tail:?}"))
            } else {
                Verdict::Ok
            };
            (verdict, false)
        }
        Class::Cached => {
            let text = format!("soak cached question {}", n % 6);
            let body = chat("smollm2", &text, n.is_multiple_of(3), 0.0);
            let (status, headers, body) = post(client, url, &body).await?;
            if status != StatusCode::OK {
                return Ok((status_failed(status, &body), false));
            }
            let hit = header(&headers, "x-switchyard-cache") == "hit";
            (expect_echo(&headers, &body, &text), hit)
        }
        Class::Disconnect => {
            let text = format!("soak {w}.{n}: please answer slowly, {}", "word ".repeat(30));
            let response = client.request(request(url, &chat("fast", &text, true, 0.7))?).await?;
            let status = response.status();
            if status != StatusCode::OK {
                let body = response.into_body().collect().await?.to_bytes();
                return Ok((status_failed(status, &body), false));
            }
            let mut body = response.into_body();
            let first = body.frame().await.transpose()?;
            // Dropping the body here closes the connection mid-stream.
            drop(body);
            let verdict = if first.is_some() {
                Verdict::Ok
            } else {
                Verdict::Failed("stream ended before its first frame".into())
            };
            (verdict, false)
        }
        Class::SlowReader => {
            let text = format!("soak slow reader {w}.{n}: {}", "lorem ".repeat(600));
            let response = client.request(request(url, &chat("fast", &text, true, 0.7))?).await?;
            let (parts, mut body) = response.into_parts();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await.transpose()? {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if parts.status != StatusCode::OK {
                return Ok((status_failed(parts.status, &bytes), false));
            }
            (expect_echo(&parts.headers, &bytes, &text), false)
        }
        Class::Swap | Class::SwapRejected => (Verdict::Failed("not a request class".into()), false),
    })
}

/// Hot swap `i` of [`SWAPS`]: every fifth is a component that must be refused (not a component,
/// one importing outside the host interface, one whose init fails on the plugin's config); the
/// others are the built component, as is or "rebuilt" (a custom section appended: new sha256,
/// same code).
async fn swap(ctx: &Ctx, admin: &str, i: usize) {
    let started = Instant::now();
    let (file, built) = wasm::BUILT_IN[i % wasm::BUILT_IN.len()];
    let name = file.trim_end_matches(".wasm").replace('_', "-");
    let rejected = i % 5 == 3;
    let bytes = if rejected {
        match (i / 5) % 3 {
            0 => Ok(b"not a component".to_vec()),
            1 => std::fs::read(wasm::ESCAPE),
            _ => std::fs::read(wasm::GARBAGE),
        }
    } else {
        std::fs::read(built).map(|mut b| {
            if i % 2 == 1 && !std::env::args().any(|a| a == "--no-rebuilt") {
                b.extend(custom_section("soak-rebuild", i));
            }
            b
        })
    };
    let class = if rejected { Class::SwapRejected } else { Class::Swap };
    let verdict = match bytes {
        Err(e) => Verdict::Failed(format!("reading component: {e}")),
        Ok(bytes) => {
            let request = Request::put(format!("{admin}/{name}"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::new(Bytes::from(bytes)));
            let client = http_client();
            let sent = async {
                let response = client.request(request?).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, body))
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                Err(_) => Verdict::Failed("no answer within 60 s".into()),
                Ok(Err(e)) => Verdict::Failed(format!("transport: {e:#}")),
                Ok(Ok((status, body))) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    match (rejected, status.is_success()) {
                        (false, true) | (true, false) if status != StatusCode::UNAUTHORIZED => {
                            Verdict::Ok
                        }
                        (true, true) => Verdict::Wrong(format!("swap {i} {name} accepted")),
                        _ => Verdict::Failed(format!("swap {i} {name}: {status} {text}")),
                    }
                }
            }
        }
    };
    ctx.record(class, false, started, verdict, false);
}

/// A wasm custom section (id 0) named `name` holding `i`: valid anywhere in a component.
fn custom_section(name: &str, i: usize) -> Vec<u8> {
    let payload = i.to_le_bytes();
    let mut content = leb128(name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(&payload);
    let mut out = vec![0u8];
    out.extend(leb128(content.len()));
    out.extend(content);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Drains what the mocks received and notes raw PII (the soak's addresses and phone numbers)
/// anywhere, and any PII placeholder at the hosted upstream (residency).
fn audit_received(local: &MockUpstream, hosted: &MockUpstream, leaks: &Mutex<Vec<String>>) {
    let mut found = Vec::new();
    for (name, mock) in [("local", local), ("hosted", hosted)] {
        for received in mock.drain_received() {
            let body = String::from_utf8_lossy(&received.body);
            if body.contains("soak-mail.com") || body.contains("7946 ") {
                found.push(format!("{name} received raw PII: {body}"));
            }
            if name == "hosted" && (body.contains("<EMAIL_") || body.contains("<PHONE_")) {
                found.push(format!("hosted received a PII request: {body}"));
            }
        }
    }
    if let Ok(mut leaks) = leaks.lock() {
        leaks.extend(found);
    }
}

fn percent(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / from as f64 * 100.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// RSS samples (KiB, every half second under load) of one stretch of the run.
#[derive(Debug, Clone, Copy)]
struct RssWindow {
    /// The lowest: what stays resident (a leak raises it; a transient peak does not).
    floor: u64,
    median: u64,
    peak: u64,
}

impl RssWindow {
    fn of(samples: &[(Duration, u64)], from: Duration, to: Duration) -> Option<Self> {
        let mut kib: Vec<u64> =
            samples.iter().filter(|(at, _)| (from..=to).contains(at)).map(|(_, k)| *k).collect();
        kib.sort_unstable();
        Some(Self { floor: *kib.first()?, median: kib[kib.len() / 2], peak: *kib.last()? })
    }
}

/// Where the resident memory is: malloc's heap and anonymous maps (wasm linear memories and
/// stacks of the pool too), file maps (code), and shared memory (wasmtime's memory images).
fn rss_parts(pid: u32) -> String {
    let kib = |field| status_kib(pid, field).map_or_else(|_| "?".to_string(), |v| v.to_string());
    format!("anon {}, file {}, shmem {}", kib("RssAnon"), kib("RssFile"), kib("RssShmem"))
}

/// Sockets of the API listener's port that are open (any state but LISTEN and TIME_WAIT).
fn open_connections(port: u16) -> Result<usize> {
    let mut open = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state != "0A" && *state != "06" {
                open += 1;
            }
        }
    }
    Ok(open)
}

/// `/metrics` as name (with labels) → value.
async fn metrics(proxy: &Child) -> Result<BTreeMap<String, f64>> {
    let client = http_client();
    let request = Request::get(proxy.admin_url("/metrics")).body(Full::new(Bytes::new()))?;
    let body = client.request(request).await?.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

struct Report<'a> {
    seconds: u64,
    rows: &'a BTreeMap<Class, Row>,
    examples: &'a [String],
    leaks: &'a [String],
    rss: (u64, u64, u64),
    /// The samples in the tenth after warm-up and in the last tenth of the run.
    rss_windows: (Option<RssWindow>, Option<RssWindow>),
    /// The samples in each tenth of the run.
    tenths: &'a [Option<RssWindow>],
    planned_swaps: usize,
    strict: bool,
    open: usize,
    idle_metrics: &'a BTreeMap<String, f64>,
    end_metrics: &'a BTreeMap<String, f64>,
    load: String,
}

/// Prints the tables; true when every check passed.
fn report(r: &Report) -> bool {
    let (rows, examples) = (r.rows, r.examples);
    println!(
        "Soak: {} s, default chain, local upstream down for {} s at 45 %.\n",
        r.seconds,
        OUTAGE.as_secs()
    );
    println!(
        "| class | requests | ok | failed, excused | failed, should have succeeded | \
         wrong answers | plugin deadline missed | cache hits |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (mut failures, mut deadline) = (0, 0);
    for (class, row) in rows {
        failures += row.unexpected + row.wrong;
        deadline += row.deadline;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            class.name(),
            row.sent,
            row.ok,
            row.allowed,
            row.unexpected,
            row.wrong,
            row.deadline,
            row.hits
        );
    }
    let total: usize = rows.values().map(|r| r.sent).sum();
    let hits: usize = rows.get(&Class::Cached).map_or(0, |r| r.hits);
    let swaps: usize =
        [Class::Swap, Class::SwapRejected].iter().filter_map(|c| rows.get(c)).map(|r| r.sent).sum();
    let (warm, end, idle) = r.rss;
    let growth = percent(warm, end);
    let gauge = |m: &BTreeMap<String, f64>, name: &str| m.get(name).copied().unwrap_or(f64::NAN);
    let free_idle = gauge(r.idle_metrics, "switchyard_plugin_instances_free");
    let free_end = gauge(r.end_metrics, "switchyard_plugin_instances_free");
    let max_end = gauge(r.end_metrics, "switchyard_plugin_instances_max");
    let generation = gauge(r.end_metrics, "switchyard_plugin_generation");
    let checks = [
        (
            "requests that should have succeeded and failed".to_string(),
            format!("{}", failures),
            failures == 0,
        ),
        (
            "plugin deadline misses (wall-clock timeout_ms on a loaded host)".into(),
            format!("{deadline}{}", if r.strict { "" } else { " (informational)" }),
            !r.strict || deadline == 0,
        ),
        (
            "raw PII at an upstream / PII at hosted".into(),
            format!("{}", r.leaks.len()),
            r.leaks.is_empty(),
        ),
        (
            format!("hot swaps done ({})", r.planned_swaps),
            format!("{swaps}"),
            swaps == r.planned_swaps,
        ),
        ("cache hits".into(), format!("{hits}"), hits > 0),
        (
            "proxy RSS floor (lowest sample) in the tenth after warm-up → in the last tenth".into(),
            match r.rss_windows {
                (Some(first), Some(last)) => format!(
                    "{:.1} → {:.1} MiB ({:+.1} %); medians {:.1} → {:.1} MiB ({:+.1} %)",
                    mib(first.floor),
                    mib(last.floor),
                    percent(first.floor, last.floor),
                    mib(first.median),
                    mib(last.median),
                    percent(first.median, last.median)
                ),
                _ => "no samples".into(),
            },
            matches!(r.rss_windows, (Some(a), Some(b)) if percent(a.floor, b.floor) < 5.0),
        ),
        (
            "proxy RSS at warm-up's end → run's end, single samples; idle after 12 s (informational)"
                .into(),
            format!(
                "{:.1} → {:.1} MiB ({growth:+.1} %); idle {:.1} MiB",
                mib(warm),
                mib(end),
                mib(idle)
            ),
            true,
        ),
        (
            "plugin instances free / max at end (idle before load)".into(),
            format!("{free_end} / {max_end} ({free_idle})"),
            free_end >= free_idle,
        ),
        ("open API connections at end".into(), format!("{}", r.open), r.open == 0),
    ];
    println!("\n| check | value | pass |\n|---|---|---|");
    for (name, value, pass) in &checks {
        println!("| {name} | {value} | {} |", if *pass { "yes" } else { "**NO**" });
    }
    println!(
        "\n{total} requests and swaps in all; plugin generation at end {generation}; load average at end {}.",
        r.load
    );
    for line in examples.iter().chain(r.leaks.iter().take(5)) {
        let short: String = line.chars().take(900).collect();
        eprintln!("failure: {short}");
    }
    println!("\n| RSS, MiB, sampled every 0.5 s | floor | median | peak |\n|---|---|---|---|");
    for (i, tenth) in r.tenths.iter().enumerate() {
        if let Some(w) = tenth {
            let (from, to) = (r.seconds * i as u64 / 10, r.seconds * (i as u64 + 1) / 10);
            let (floor, median, peak) = (mib(w.floor), mib(w.median), mib(w.peak));
            println!("| {from}–{to} s | {floor:.1} | {median:.1} | {peak:.1} |");
        }
    }
    checks.iter().all(|(_, _, pass)| *pass)
}

fn set_event(ctx: &Ctx, set: impl FnOnce(&mut Events)) {
    if let Ok(mut events) = ctx.events.lock() {
        set(&mut events);
    }
}
