//! The one interface both counter stores implement ([`Store`]), and what goes in and out of it.
//! A store does the check and the reservation as one atomic step: a mutex in memory, a Lua script
//! in Redis.

use super::window::Windows;

/// A tenant's limits in the ledger's integer units; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub max_concurrent: Option<u64>,
    /// The day budget in micro-USD.
    pub budget_micros_per_day: Option<u64>,
}

impl Limits {
    /// Whether any limit applies (then answers carry `x-ratelimit-*` headers).
    pub fn any(&self) -> bool {
        self.requests_per_minute.is_some()
            || self.tokens_per_minute.is_some()
            || self.max_concurrent.is_some()
            || self.budget_micros_per_day.is_some()
    }
}

/// Which limits an admission would have passed (a small bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exceeded(pub u8);

impl Exceeded {
    pub const REQUESTS: u8 = 1;
    pub const TOKENS: u8 = 2;
    pub const CONCURRENT: u8 = 4;
    pub const BUDGET: u8 = 8;

    pub fn none(self) -> bool {
        self.0 == 0
    }
    pub fn requests(self) -> bool {
        self.0 & Self::REQUESTS != 0
    }
    pub fn tokens(self) -> bool {
        self.0 & Self::TOKENS != 0
    }
    pub fn concurrent(self) -> bool {
        self.0 & Self::CONCURRENT != 0
    }
    pub fn budget(self) -> bool {
        self.0 & Self::BUDGET != 0
    }
    /// The names of the exceeded limits, as in the config.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.requests(), "requests_per_minute"),
            (self.tokens(), "tokens_per_minute"),
            (self.concurrent(), "max_concurrent"),
            (self.budget(), "budget_usd_per_day"),
        ]
        .into_iter()
        .filter_map(|(hit, name)| hit.then_some(name))
        .collect()
    }
}

/// What one admission reserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// A request that goes upstream: 1 request, `tokens`, `cost_micros` and a concurrency slot.
    /// A cache hit: 1 request and nothing else (it costs nothing and holds nothing).
    pub cache_hit: bool,
    /// Estimated prompt tokens plus `max_tokens` (or the tenant's default).
    pub tokens: u64,
    /// The worst-case cost, micro-USD.
    pub cost_micros: u64,
}

/// A store's answer to an admission: what was exceeded (nothing: admitted and reserved), and the
/// counters after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub exceeded: Exceeded,
    pub windows: Windows,
}

/// The end of one reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The reservation's id (its concurrency slot).
    pub id: u64,
    /// The store's clock at admission: the windows the reservation was made in.
    pub admitted_ms: u64,
    pub reserved_tokens: u64,
    pub used_tokens: u64,
    pub reserved_micros: u64,
    pub used_micros: u64,
}

/// The store could not be reached in time, or answered something unexpected.
#[derive(Debug, Clone, thiserror::Error)]
#[error("usage ledger unavailable: {0}")]
pub struct Unavailable(pub String);

/// Where the counters live. `now_ms` is the caller's clock (tests); `None` is the store's own
/// (the process clock in memory, Redis's `TIME`, so replicas' clocks never split a window).
pub trait Store: Send + Sync {
    /// Checks every limit against the current windows and, only when all pass, reserves `ask`
    /// in them under `id`: one atomic step, so concurrent admissions never pass a limit together.
    fn admit(
        &self,
        tenant: &str,
        limits: &Limits,
        ask: &Ask,
        id: u64,
        now_ms: Option<u64>,
    ) -> impl Future<Output = Result<Verdict, Unavailable>> + Send;

    /// Ends a reservation: frees its concurrency slot, and replaces what it reserved with what was
    /// used. In the window it was made in when that is still current; else only usage beyond the
    /// reservation is charged, to the current window (so nothing is ever uncounted). Returns the
    /// tenant's windows after it, in the same step (the limits snapshot plugins see).
    fn settle(
        &self,
        tenant: &str,
        settlement: &Settlement,
        now_ms: Option<u64>,
    ) -> impl Future<Output = Result<Windows, Unavailable>> + Send;

    /// The tenant's counters in the current windows.
    fn windows(
        &self,
        tenant: &str,
        now_ms: Option<u64>,
    ) -> impl Future<Output = Result<Windows, Unavailable>> + Send;
}
