//! What clients see of the ledger: the `x-ratelimit-*` headers OpenAI sends (on every answer to
//! a limited tenant), and a refusal as OpenAI's error (429 `rate_limit_exceeded` or
//! `insufficient_quota`, 503 `ledger_unavailable`) with `retry-after`.

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::price::MICROS_PER_USD;
use super::store::{Exceeded, Limits};
use super::window::{self, Windows, format_reset};
use crate::body::{self, Body};

/// A tenant's limits and its counters at one moment (from the admission's own round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limits: Limits,
    pub windows: Windows,
}

/// What is left of each limit; `None` for limits that are not set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Remaining {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
    pub concurrent: Option<u64>,
    pub budget_usd: Option<f64>,
}

/// The limits as configured (USD, not micro-USD).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LimitsView {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub max_concurrent: Option<u64>,
    pub budget_usd_per_day: Option<f64>,
}

/// The current windows' counters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowView {
    /// The store's clock, Unix ms.
    pub now_ms: u64,
    pub requests_this_minute: u64,
    pub tokens_this_minute: u64,
    pub in_flight: u64,
    pub cost_usd_today: f64,
    pub minute_resets_in_ms: u64,
    pub day_resets_in_ms: u64,
}

fn usd(micros: u64) -> f64 {
    micros as f64 / MICROS_PER_USD
}

impl From<Limits> for LimitsView {
    fn from(l: Limits) -> Self {
        Self {
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
            max_concurrent: l.max_concurrent,
            budget_usd_per_day: l.budget_micros_per_day.map(usd),
        }
    }
}

impl From<Windows> for WindowView {
    fn from(w: Windows) -> Self {
        Self {
            now_ms: w.now_ms,
            requests_this_minute: w.requests,
            tokens_this_minute: w.tokens,
            in_flight: w.concurrent,
            cost_usd_today: usd(w.cost_micros),
            minute_resets_in_ms: window::minute_reset_ms(w.now_ms),
            day_resets_in_ms: window::day_reset_ms(w.now_ms),
        }
    }
}

impl RateState {
    pub fn remaining(&self) -> Remaining {
        let (l, w) = (&self.limits, &self.windows);
        Remaining {
            requests: l.requests_per_minute.map(|n| n.saturating_sub(w.requests)),
            tokens: l.tokens_per_minute.map(|n| n.saturating_sub(w.tokens)),
            concurrent: l.max_concurrent.map(|n| n.saturating_sub(w.concurrent)),
            budget_usd: l.budget_micros_per_day.map(|n| usd(n.saturating_sub(w.cost_micros))),
        }
    }

    /// Adds OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` for the limits the
    /// tenant has (none for a tenant without them). Every answer to a limited tenant carries
    /// them: names are constants, numbers go in without a `String`, the reset is formatted once.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        let remaining = self.remaining();
        let mut reset = None;
        for (names, limit, left) in [
            (&REQUESTS, self.limits.requests_per_minute, remaining.requests),
            (&TOKENS, self.limits.tokens_per_minute, remaining.tokens),
        ] {
            let (Some(limit), Some(left)) = (limit, left) else { continue };
            let [limit_name, remaining_name, reset_name] = names;
            headers.insert(limit_name.clone(), HeaderValue::from(limit));
            headers.insert(remaining_name.clone(), HeaderValue::from(left));
            let reset = reset.get_or_insert_with(|| {
                HeaderValue::try_from(format_reset(window::minute_reset_ms(self.windows.now_ms)))
            });
            if let Ok(reset) = reset {
                headers.insert(reset_name.clone(), reset.clone());
            }
        }
    }
}

/// The `x-ratelimit-{limit,remaining,reset}-requests` header names.
const REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
/// The `x-ratelimit-{limit,remaining,reset}-tokens` header names.
const TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// A request the ledger did not admit.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub rate: RateState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Over one or more limits; nothing was reserved.
    Limited { exceeded: Exceeded, retry_after_ms: u64 },
    /// The store did not answer and `on_unavailable = "closed"`.
    Unavailable,
}

impl Refusal {
    pub(super) fn limited(rate: RateState, exceeded: Exceeded) -> Self {
        let now = rate.windows.now_ms;
        let mut wait = 0;
        if exceeded.requests() || exceeded.tokens() {
            wait = window::minute_reset_ms(now);
        }
        if exceeded.concurrent() {
            // A slot frees when a request in flight ends: no time is known, retry soon.
            wait = wait.max(1000);
        }
        if exceeded.budget() {
            wait = wait.max(window::day_reset_ms(now));
        }
        Self { kind: RefusalKind::Limited { exceeded, retry_after_ms: wait }, rate }
    }

    pub(super) fn unavailable(limits: Limits) -> Self {
        let windows = Windows { now_ms: super::memory::system_now_ms(), ..Windows::default() };
        Self { kind: RefusalKind::Unavailable, rate: RateState { limits, windows } }
    }

    /// 429 over a limit, 503 when the ledger could not be asked.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RefusalKind::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `code`: `insufficient_quota` when the day budget is spent (waiting a minute
    /// does not help), else `rate_limit_exceeded`; `ledger_unavailable` for a 503.
    pub fn code(&self) -> &'static str {
        match self.kind {
            RefusalKind::Limited { exceeded, .. } if exceeded.budget() => "insufficient_quota",
            RefusalKind::Limited { .. } => "rate_limit_exceeded",
            RefusalKind::Unavailable => "ledger_unavailable",
        }
    }

    /// Seconds for `retry-after`, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self.kind {
            RefusalKind::Limited { retry_after_ms, .. } => retry_after_ms.div_ceil(1000).max(1),
            RefusalKind::Unavailable => 1,
        }
    }

    /// The error's message: which limits, how much was used, when to retry.
    pub fn message(&self) -> String {
        let RefusalKind::Limited { exceeded, .. } = self.kind else {
            return "the usage ledger is unavailable, so no request can be admitted; retry shortly"
                .into();
        };
        let (l, w) = (&self.rate.limits, &self.rate.windows);
        let mut parts = Vec::new();
        let mut part = |hit: bool, what: &str, limit: Option<u64>, used: u64| {
            if let (true, Some(limit)) = (hit, limit) {
                parts.push(format!("{what}: limit {limit}, used {used}"));
            }
        };
        part(exceeded.requests(), "requests per minute", l.requests_per_minute, w.requests);
        part(exceeded.tokens(), "tokens per minute", l.tokens_per_minute, w.tokens);
        part(exceeded.concurrent(), "requests in flight", l.max_concurrent, w.concurrent);
        if let (true, Some(budget)) = (exceeded.budget(), l.budget_micros_per_day) {
            parts.push(format!(
                "USD per day: budget {:.6}, spent or reserved {:.6} (this request may cost more \
                 than is left)",
                usd(budget),
                usd(w.cost_micros)
            ));
        }
        format!(
            "Rate limit reached on {}. Please try again in {}.",
            parts.join("; "),
            format_reset(self.retry_after_secs() * 1000)
        )
    }

    /// The OpenAI error response with `retry-after` and the `x-ratelimit-*` headers.
    pub fn into_response(self) -> Response<Body> {
        let kind = match self.kind {
            RefusalKind::Limited { exceeded, .. } if exceeded.budget() => "insufficient_quota",
            RefusalKind::Limited { exceeded, .. } if exceeded.tokens() => "tokens",
            RefusalKind::Limited { .. } => "requests",
            RefusalKind::Unavailable => "server_error",
        };
        let error = crate::wire::error_body(&self.message(), kind, None, Some(self.code()));
        let mut response = body::json(self.status(), &error);
        let headers = response.headers_mut();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(self.retry_after_secs()));
        if matches!(self.kind, RefusalKind::Limited { .. }) {
            self.rate.apply_headers(headers);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(limits: Limits, requests: u64, tokens: u64) -> RateState {
        // 15.2 s into a minute.
        let windows =
            Windows { now_ms: 60_000 * 1000 + 15_200, requests, tokens, ..Windows::default() };
        RateState { limits, windows }
    }

    #[test]
    fn headers_name_only_the_limits_a_tenant_has() {
        let mut headers = HeaderMap::new();
        state(Limits::default(), 5, 5).apply_headers(&mut headers);
        assert!(headers.is_empty());
        let limits = Limits { tokens_per_minute: Some(1000), ..Limits::default() };
        state(limits, 5, 400).apply_headers(&mut headers);
        let names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens"
            ]
        );
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "600");
        assert_eq!(headers["x-ratelimit-reset-tokens"], "45s");
        // Both: six headers, one reset.
        let mut headers = HeaderMap::new();
        let limits = Limits { requests_per_minute: Some(60), ..limits };
        state(limits, 5, 400).apply_headers(&mut headers);
        assert_eq!(headers.len(), 6);
        assert_eq!(headers["x-ratelimit-limit-requests"], "60");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "55");
        assert_eq!(headers["x-ratelimit-reset-requests"], "45s");
        assert_eq!(headers["x-ratelimit-reset-tokens"], "45s");
    }

    #[test]
    fn a_refusal_is_openai_shaped_with_retry_after() {
        let limits = Limits {
            requests_per_minute: Some(3),
            tokens_per_minute: Some(10),
            ..Limits::default()
        };
        let refusal =
            Refusal::limited(state(limits, 3, 9), Exceeded(Exceeded::REQUESTS | Exceeded::TOKENS));
        assert_eq!((refusal.status().as_u16(), refusal.code()), (429, "rate_limit_exceeded"));
        assert_eq!(refusal.retry_after_secs(), 45);
        let message = refusal.message();
        assert!(message.contains("requests per minute: limit 3, used 3"), "{message}");
        assert!(message.contains("tokens per minute: limit 10, used 9"), "{message}");
        let response = refusal.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "45");
        assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "0");
        assert_eq!(response.headers()["x-ratelimit-remaining-tokens"], "1");
        let budget = Limits { budget_micros_per_day: Some(1), ..Limits::default() };
        let spent = Refusal::limited(state(budget, 0, 0), Exceeded(Exceeded::BUDGET));
        assert_eq!((spent.status().as_u16(), spent.code()), (429, "insufficient_quota"));
        let down = Refusal::unavailable(limits);
        assert_eq!(
            (down.status().as_u16(), down.code(), down.retry_after_secs()),
            (503, "ledger_unavailable", 1)
        );
    }
}
