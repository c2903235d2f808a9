//! Timing a plugin chain's request phase in-process, for the plugin benchmarks (`bench_plugin`,
//! `bench_lang`): per-request samples, and everything the loop did per request.

use std::time::{Duration, Instant};

use anyhow::Context;

use switchyard::plugin::{LlmRequest, Message, PluginRegistry, RequestOutcome};

/// Latency of the samples, and everything the loop did per sample (`total / samples`).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub median: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub all_in: Duration,
}

/// The quantiles of `samples`, and `total` spread over them.
pub fn summarize(mut samples: Vec<Duration>, total: Duration) -> Timing {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
        samples.get(i).copied().unwrap_or_default()
    };
    let all_in = total / u32::try_from(samples.len().max(1)).unwrap_or(u32::MAX);
    Timing { median: at(0.5), p99: at(0.99), max: at(1.0), all_in }
}

/// Times the request phase of `reg`'s chain over `calls` requests, after `warmup` more. Between
/// two requests the loop yields, as a proxy worker does while it waits for the network, so the
/// work the runtime does off the request path (spare instances, dropping used ones) runs there:
/// it counts in `all_in`, not in the per-request samples. Every request must proceed.
pub async fn sample_chain(
    reg: &PluginRegistry,
    req: &LlmRequest,
    warmup: usize,
    calls: usize,
) -> anyhow::Result<Timing> {
    sample(reg, req, warmup, calls, None).await
}

/// [`sample_chain`] with requests arriving `every` apart on average (an open loop: a late request
/// does not move the next one), as at a proxy that is not saturated. Each is timed from its
/// arrival, so work off the request path that holds up the worker when a request arrives (making
/// a spare instance, dropping one) counts in that request's time.
pub async fn sample_chain_paced(
    reg: &PluginRegistry,
    req: &LlmRequest,
    warmup: usize,
    calls: usize,
    every: Duration,
) -> anyhow::Result<Timing> {
    sample(reg, req, warmup, calls, Some(every)).await
}

async fn sample(
    reg: &PluginRegistry,
    req: &LlmRequest,
    warmup: usize,
    calls: usize,
    every: Option<Duration>,
) -> anyhow::Result<Timing> {
    let set = reg.current();
    // Paced, a thread of its own says when each request is due (a runtime timer would wake up to
    // a millisecond late), and a request counts from then: a worker that was busy when it
    // arrived makes it late. Arrivals are a Poisson process (exponential gaps, seeded), as
    // independent clients make them, so some arrive while the worker does other work.
    let mut due = every.map(|every| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let n = warmup + calls;
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(0x5EED_CA11);
            let mut at = Instant::now();
            for _ in 0..n {
                at += every.mul_f64(-(1.0 - rng.f64()).ln());
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                if tx.send(Instant::now()).is_err() {
                    return;
                }
            }
        });
        rx
    });
    let mut samples = Vec::with_capacity(calls);
    let mut all = Instant::now();
    for i in 0..warmup + calls {
        if i == warmup {
            all = Instant::now();
        }
        let r = req.clone();
        let start = match &mut due {
            Some(rx) => rx.recv().await.context("the pacing thread stopped")?,
            None => Instant::now(),
        };
        let outcome = set.on_request(r).await;
        let took = start.elapsed();
        if i >= warmup {
            samples.push(took);
            anyhow::ensure!(matches!(outcome, RequestOutcome::Proceed(_)), "{outcome:?}");
        }
        drop(outcome);
        if due.is_none() {
            tokio::task::yield_now().await;
        }
    }
    Ok(summarize(samples, all.elapsed()))
}

/// The request both plugin benchmarks time: about 2 KB of chat text (system prompt, a few turns).
pub fn chat_2kb() -> LlmRequest {
    let msg = |role: &str, content: String| Message { role: role.into(), content };
    let para = "Switchyard routes LLM traffic between a local model and hosted APIs. ";
    LlmRequest {
        endpoint: "/v1/chat/completions".into(),
        model: Some("smollm2".into()),
        stream: false,
        messages: vec![
            msg("system", "You are a helpful assistant. Answer briefly.".into()),
            msg("user", para.repeat(8)),
            msg("assistant", para.repeat(8)),
            msg("user", format!("{} Order 12345, ticket 678.", para.repeat(11))),
        ],
        params_json: r#"{"temperature":0.2,"max_tokens":256}"#.into(),
        tenant: Some("acme".into()),
        headers: vec![("user-agent".into(), "bench".into())],
        tags: vec![],
    }
}
