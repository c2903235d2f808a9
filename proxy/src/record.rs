//! The end of a request. Once its response body has ended (sent whole, failed, or abandoned by the
//! client), what its [`Trail`] noted becomes one access-log line and the usage metrics. Never
//! prompt or answer text: names, numbers and the tags plugins chose to set.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::admission;
use crate::body::Ended;
use crate::cache::CacheStatus;
use crate::ledger::Reservation;
use crate::metrics::Metrics;
use crate::state::State;
use crate::telemetry;
use crate::trail::{Trail, Usage};

/// What the pipeline knows about a request, for its record.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub request_id: String,
    pub endpoint: &'static str,
    pub tenant: Option<Arc<str>>,
    /// The model asked for (after routing).
    pub model: Option<String>,
    pub stream: bool,
    /// Tags set by plugins.
    pub tags: Vec<(String, String)>,
}

/// How the response went, known when its head was sent.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: u16,
    pub cache: CacheStatus,
    /// The upstream that answered, or `none`.
    pub upstream: String,
}

/// Tokens of a finished request and where the numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub usage: Usage,
    /// `reported` (by the upstream), `estimated` (from the text relayed), `cached` (a cache hit:
    /// nothing was generated) or `none` (no answer).
    pub source: &'static str,
}

/// The tokens to count for a request: the upstream's report, else an estimate of the completion
/// from the text relayed. A cache hit generated nothing.
pub fn count(outcome: &Outcome, trail: &crate::trail::Notes) -> Counted {
    if outcome.cache == CacheStatus::Hit {
        return Counted { usage: Usage::default(), source: "cached" };
    }
    match trail.usage {
        Some(usage) => Counted { usage, source: "reported" },
        // No report (a stream that broke or was abandoned before its usage chunk, an upstream
        // that ignores `stream_options.include_usage`): the text relayed, estimated.
        None if trail.relayed_tokens > 0 => {
            let usage = Usage { completion_tokens: trail.relayed_tokens, ..Usage::default() };
            Counted { usage, source: "estimated" }
        }
        None => Counted { usage: Usage::default(), source: "none" },
    }
}

/// Completes the record of a request whose response body ended `how`: settles its
/// `reservation` in the ledger, writes its access-log line and metrics, and exports its spans.
pub fn finish(
    state: &State,
    meta: &Meta,
    outcome: &Outcome,
    trail: &Trail,
    how: Ended,
    reservation: Option<Reservation>,
) {
    let notes = trail.take();
    let elapsed = trail.started().elapsed();
    let counted = count(outcome, &notes);
    let model = notes.response_model.as_deref().or(meta.model.as_deref());
    let tenant = meta.tenant.as_deref();
    let usage = counted.usage;
    let usd = admission::settle(state, tenant, reservation, &outcome.upstream, model, usage);
    if let Some(first) = notes.first_token.filter(|_| outcome.status < 400) {
        let metrics = &state.metrics;
        Metrics::observe(&metrics.first_token, &outcome.upstream, first.as_secs_f64());
        let generating = elapsed.saturating_sub(first);
        let tokens = counted.usage.completion_tokens;
        if meta.stream && tokens > 0 && generating > Duration::from_millis(1) {
            let rate = tokens as f64 / generating.as_secs_f64();
            Metrics::observe(&metrics.tokens_per_second, &outcome.upstream, rate);
        }
    }
    if let Some(log) = &state.access_log {
        log.write(line(meta, outcome, &notes, counted, usd, elapsed, how).to_string());
    }
    if let Some(telemetry) = &state.telemetry
        && notes.trace.as_ref().is_some_and(|t| t.sampled)
    {
        // The spans are built on the exporter thread: this runs before hyper flushes the
        // response's last bytes, so here it costs copies of the notes, not the spans' strings.
        let attempted: Vec<_> = notes
            .attempts
            .iter()
            .filter_map(|a| state.upstreams.get(&a.upstream).cloned())
            .collect();
        let count = 1 + notes.attempts.len() + notes.plugin_calls.len();
        let (meta, outcome, ended, end) = (meta.clone(), outcome.clone(), SystemTime::now(), how);
        telemetry.exporter.submit_later(
            count,
            Box::new(move || {
                let address = |name: &str| {
                    attempted.iter().find(|u| u.name == name).and_then(|u| u.authority())
                };
                telemetry::spans(&telemetry::Finished {
                    meta: &meta,
                    outcome: &outcome,
                    notes: &notes,
                    counted,
                    ended,
                    elapsed,
                    end: end_label(end),
                    address: &address,
                })
            }),
        );
    }
}

fn end_label(how: Ended) -> &'static str {
    match how {
        Ended::Complete => "complete",
        Ended::Failed => "failed",
        Ended::Abandoned => "client_gone",
    }
}

/// The access-log line of one request.
fn line(
    meta: &Meta,
    outcome: &Outcome,
    notes: &crate::trail::Notes,
    counted: Counted,
    usd: f64,
    elapsed: Duration,
    how: Ended,
) -> Value {
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let attempts: Vec<Value> = notes
        .attempts
        .iter()
        .map(|a| json!({"upstream": a.upstream, "outcome": a.outcome, "ms": ms(a.duration)}))
        .collect();
    let tags: Map<String, Value> =
        meta.tags.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let end = end_label(how);
    json!({
        "time": rfc3339(SystemTime::now()),
        "request_id": meta.request_id,
        "tenant": meta.tenant.as_deref(),
        "endpoint": meta.endpoint,
        "model": meta.model,
        "response_model": notes.response_model,
        "stream": meta.stream,
        "status": outcome.status,
        "upstream": outcome.upstream,
        "attempts": attempts,
        "cache": outcome.cache.as_str(),
        "end": end,
        "prompt_tokens": counted.usage.prompt_tokens,
        "completion_tokens": counted.usage.completion_tokens,
        "cached_prompt_tokens": counted.usage.cached_prompt_tokens,
        "usage": counted.source,
        "cost_usd": usd,
        "latency_ms": ms(elapsed),
        "ttft_ms": notes.first_token.map(ms),
        "tags": tags,
    })
}

/// `time` as an RFC 3339 UTC timestamp with milliseconds (`2026-12-05T23:48:20.123Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (h, m, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    let millis = since.subsec_millis();
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::Notes;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, millis: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z", "a leap day");
        assert_eq!(at(1_796_514_500, 123), "2026-12-05T23:48:20.123Z");
    }

    #[test]
    fn usage_is_reported_else_estimated_and_hits_count_nothing() {
        let outcome = |cache| Outcome { status: 200, cache, upstream: "up".into() };
        let usage = Usage { prompt_tokens: 5, completion_tokens: 2, cached_prompt_tokens: 0 };
        let reported = Notes { usage: Some(usage), relayed_tokens: 99, ..Notes::default() };
        let counted = count(&outcome(CacheStatus::Miss), &reported);
        assert_eq!((counted.usage, counted.source), (usage, "reported"));
        let relayed = Notes { relayed_tokens: 3, ..Notes::default() };
        let counted = count(&outcome(CacheStatus::Miss), &relayed);
        assert_eq!((counted.usage.completion_tokens, counted.source), (3, "estimated"));
        let hit = count(&outcome(CacheStatus::Hit), &reported);
        assert_eq!((hit.usage, hit.source), (Usage::default(), "cached"));
        let nothing = count(&outcome(CacheStatus::Bypass), &Notes::default());
        assert_eq!(nothing.source, "none");
    }
}
