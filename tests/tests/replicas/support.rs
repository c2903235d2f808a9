//! What the replica tests share: a cluster of real proxies (three over one real `redis-server`,
//! or one with the in-process store) in front of one recording mock, a tenant `acme` with a key,
//! and the admin view every proxy answers.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::redis::RedisServer;

pub const KEY: &str = "sk-acme-virtual";
const ADMIN: &str = "admin-t0ken";

/// The prompt every test sends: the mock counts 4 prompt tokens, and answers
/// `local heard: one two three four` (6 completion tokens, one per streamed piece).
pub const PROMPT: &str = "one two three four";

/// Prices of the mock upstream in USD per million tokens: a request's worst case and real cost
/// are whole micro-dollars (`tokens × price`).
pub const INPUT_USD_PER_MTOK: u64 = 1;
pub const OUTPUT_USD_PER_MTOK: u64 = 100;

/// Which store the proxies keep their ledger in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One proxy, in-process counters.
    Memory,
    /// Three proxies sharing one redis-server.
    Redis,
}

/// Proxies in front of one mock upstream, sharing their limits through `redis` when there is one.
pub struct Cluster {
    pub proxies: Vec<Proxy>,
    pub upstream: MockUpstream,
    pub redis: Option<RedisServer>,
}

impl Cluster {
    /// The cluster of `kind` with tenant limits `limits` (TOML lines); Redis proxies refuse
    /// (`on_unavailable = "closed"`) when Redis is down. `None`: redis-server is missing (skip).
    pub async fn start(kind: Kind, limits: &str) -> Option<Self> {
        match kind {
            Kind::Memory => Self::start_with(None, limits, &[None]).await,
            Kind::Redis => {
                let policies = [Some("closed"), Some("closed"), Some("closed")];
                Self::start_with(Some(RedisServer::start().await?), limits, &policies).await
            }
        }
    }

    /// One proxy per entry of `policies` (`Some(on_unavailable)` for the Redis store, `None`
    /// for the in-process one).
    pub async fn start_with(
        redis: Option<RedisServer>,
        limits: &str,
        policies: &[Option<&str>],
    ) -> Option<Self> {
        Self::start_extra(redis, limits, policies, "").await
    }

    /// [`Self::start_with`], with `extra` TOML at the end of every proxy's config (right after
    /// its `[state]` table: key lines before any table header land in it).
    pub async fn start_extra(
        redis: Option<RedisServer>,
        limits: &str,
        policies: &[Option<&str>],
        extra: &str,
    ) -> Option<Self> {
        let each: Vec<(Option<&str>, &str)> = policies.iter().map(|p| (*p, extra)).collect();
        Self::start_each(redis, limits, &each).await
    }

    /// One proxy per entry of `each`: its `on_unavailable` (as [`Self::start_with`]) and the
    /// TOML at the end of its config (as [`Self::start_extra`]).
    pub async fn start_each(
        redis: Option<RedisServer>,
        limits: &str,
        each: &[(Option<&str>, &str)],
    ) -> Option<Self> {
        let upstream = MockUpstream::start("local", Behavior::Normal).await;
        let mut env = HashMap::from([
            ("ACME_KEY".to_string(), KEY.to_string()),
            ("ADMIN_TOKEN".to_string(), ADMIN.to_string()),
        ]);
        if let Some(redis) = &redis {
            env.insert("SWITCHYARD_REDIS_URL".to_string(), redis.url());
        }
        let mut proxies = Vec::new();
        for (policy, extra) in each {
            let cfg = proxy_config(&upstream.base_url(), limits, *policy) + extra;
            proxies.push(Proxy::start_with_env(&cfg, env.clone()).await);
        }
        Some(Self { proxies, upstream, redis })
    }

    /// Proxy `i % n`, so that consecutive indexes spread over every replica.
    pub fn proxy(&self, i: usize) -> &Proxy {
        &self.proxies[i % self.proxies.len()]
    }

    /// A chat request for `acme` to proxy `i % n`, read whole.
    pub async fn chat(&self, i: usize, body: &str) -> Reply {
        client::read(client::send(self.request(i, body)).await).await
    }

    /// A chat request for `acme` to proxy `i % n`.
    pub fn request(&self, i: usize, body: &str) -> Request<Full<Bytes>> {
        Request::post(self.proxy(i).url("/v1/chat/completions"))
            .header("authorization", format!("Bearer {KEY}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request")
    }

    /// `acme`'s entry of `GET /admin/usage` on proxy `i % n`.
    pub async fn usage(&self, i: usize) -> Value {
        let req = Request::get(self.proxy(i).admin_url("/admin/usage"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let reply = client::read(client::send(req).await).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["tenants"][0].clone()
    }

    /// The sum over every proxy of a `totals_since_start` counter (each replica counts its own).
    pub async fn total(&self, counter: &str) -> u64 {
        let mut sum = 0;
        for i in 0..self.proxies.len() {
            sum += self.usage(i).await["totals_since_start"][counter].as_u64().unwrap_or(0);
        }
        sum
    }

    /// A counter of proxy `i`'s `/metrics` (the full line up to the value, labels included):
    /// 0 when it is not there yet.
    pub async fn metric(&self, i: usize, series: &str) -> u64 {
        let metrics = client::get(&self.proxy(i).admin_url("/metrics")).await.text();
        let prefix = format!("{series} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())?.parse().ok()).unwrap_or(0)
    }

    /// The shared window (as the last proxy sees it) once no request holds a slot and `done`
    /// holds for it: settlement is one background store call after each response, so this
    /// waits for that event, polling the admin view.
    pub async fn settled(&self, done: impl Fn(&Value) -> bool) -> Value {
        let last = self.proxies.len() - 1;
        for _ in 0..3000 {
            let tenant = self.usage(last).await;
            if tenant["window"]["in_flight"] == 0 && done(&tenant) {
                return tenant["window"].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never settled: {}", self.usage(last).await);
    }

    /// Waits, when needed, for a minute (and UTC day) with at least 20 s left, so that a test's
    /// burst and its settlement fall in one fixed window: limits are per window, and a burst
    /// across a window's end may rightly get twice the limit (docs/limits.md, "Windows").
    pub async fn fresh_window(&self) {
        let window = self.usage(0).await["window"].clone();
        let left = |name: &str| window[name].as_u64().expect("window counters");
        let wait = if left("day_resets_in_ms") < 20_000 {
            left("day_resets_in_ms")
        } else if left("minute_resets_in_ms") < 20_000 {
            left("minute_resets_in_ms")
        } else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(wait + 100)).await;
    }

    /// Waits until the mock has received `count` requests (held ones included).
    pub async fn wait_for_hits(&self, count: impl Fn() -> usize) {
        for _ in 0..3000 {
            if self.upstream.hits() == count() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the mock got {} requests, not {}", self.upstream.hits(), count());
    }

    pub async fn stop(self) {
        for proxy in self.proxies {
            proxy.stop().await;
        }
    }
}

/// A chat request body asking for at most `max_tokens`.
pub fn body(stream: bool, max_tokens: u64) -> String {
    json!({"model": "m", "stream": stream, "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": PROMPT}]})
    .to_string()
}

/// The tokens the proxy reserves for the prompt of [`body`] (its tokenizer-free estimate).
pub fn prompt_estimate() -> u64 {
    switchyard::ledger::usage::estimate_chat_tokens([PROMPT])
}

/// The usage (prompt + completion tokens, micro-USD) the mock reported for the requests it
/// received: every request it answered in full.
pub fn reported(upstream: &MockUpstream) -> (u64, u64) {
    let mut tokens = 0;
    let mut micro_usd = 0;
    for received in upstream.received() {
        let request = received.json();
        let answer = switchyard_tests::mock::reply_text("local", &request);
        let usage = switchyard_tests::mock::usage(&request, answer.split_inclusive(' ').count());
        let (prompt, completion) = (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
        );
        tokens += prompt + completion;
        micro_usd += prompt * INPUT_USD_PER_MTOK + completion * OUTPUT_USD_PER_MTOK;
    }
    (tokens, micro_usd)
}

fn proxy_config(upstream: &str, limits: &str, on_unavailable: Option<&str>) -> String {
    let cfg = config(&[("local", upstream, "")], "default = \"local\"").replace(
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"ADMIN_TOKEN\"\n",
    );
    // A generous Redis timeout: a loaded 2-core test machine must not make a healthy Redis
    // "unavailable"; a killed one refuses connections at once.
    let state = match on_unavailable {
        None => "backend = \"memory\"".to_string(),
        Some(policy) => format!(
            "backend = \"redis\"\nurl_env = \"SWITCHYARD_REDIS_URL\"\n\
             on_unavailable = \"{policy}\"\ntimeout_ms = 5000"
        ),
    };
    format!(
        "{cfg}\n[[tenant]]\nname = \"acme\"\nkey_env = \"ACME_KEY\"\n{limits}\n\n\
         [[price]]\nupstream = \"local\"\ninput_usd_per_mtok = {INPUT_USD_PER_MTOK}.0\n\
         output_usd_per_mtok = {OUTPUT_USD_PER_MTOK}.0\n\n[state]\n{state}\n"
    )
}

/// Runs each shared test body for both stores, as tests `memory::NAME` (one proxy) and
/// `redis::NAME` (three proxies over one redis-server).
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        pub mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Kind::Memory).await
                }
            )*
        }
        pub mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::support::Kind::Redis).await
                }
            )*
        }
    };
}
