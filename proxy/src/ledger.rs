//! The usage ledger: each tenant's limits (requests and tokens per minute, requests in flight, a
//! USD budget per UTC day) reserved before an upstream call and settled with the real usage after
//! it, in memory or shared by every replica through Redis. docs/limits.md says how and why.
//!
//! - [`store`]: the interface both counter stores implement; [`memory`] and [`redis`] (over the
//!   small client in `resp`) implement it.
//! - [`usage`]: tokens from OpenAI answers and stream chunks, and a tokenizer-free estimate;
//!   [`estimate`]: what a parsed request may use (its prompt, its `max_tokens`).
//! - [`price`]: the price table and a request's cost.
//! - [`headers`]: `x-ratelimit-*` headers and the refusal's OpenAI error.
//! - [`window`]: minute and day windows.
//! - [`reservation`]: what an admission holds until it is settled or released.
//! - `batch`: group commit for the shared store (calls waiting behind a batch in flight go
//!   together in the next script call).
//! - `fresh`: the freshest windows seen per tenant, the limits snapshot plugins get from the
//!   shared store without a round trip of its own.
//!
//! The request path calls [`Ledger::admit`] (or [`Ledger::admit_cache_hit`]), then
//! [`Reservation::settle`] or [`Reservation::release`].

mod batch;
pub mod estimate;
mod fresh;
pub mod headers;
pub mod memory;
pub mod price;
pub mod redis;
mod report;
pub mod reservation;
pub(crate) mod resp;
pub mod store;
pub mod usage;
pub mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, OnUnavailable, StateBackend};
use crate::env::EnvSource;
use crate::metrics::ledger::LedgerMetrics;

pub use headers::Refusal;
pub use memory::MemoryStore;
pub use price::Prices;
pub use redis::RedisStore;
pub use reservation::{Admission, Reservation};
pub use store::{Ask, Exceeded, Limits, Store, Unavailable};
pub use usage::Usage;
pub use window::Windows;

/// The ledger every worker shares (cheap to clone).
#[derive(Clone, Debug)]
pub struct Ledger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Backend,
    tenants: HashMap<String, Tenant>,
    prices: Prices,
    on_unavailable: OnUnavailable,
    /// Limit for one store call: a slow Redis counts as an unavailable one.
    timeout: Duration,
    /// How old the shared store's windows may be when plugins get them instead of a new read.
    snapshot_max_age: Duration,
    clock: Clock,
    metrics: LedgerMetrics,
}

/// The store chosen by `[state]`.
#[derive(Debug)]
pub enum Backend {
    /// May be shared by several ledgers (tests standing in for replicas).
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

/// Where "now" comes from: the store's own clock, or one a test moves by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    Store,
    Manual(Arc<AtomicU64>),
}

impl Clock {
    fn now_ms(&self) -> Option<u64> {
        match self {
            Self::Store => None,
            Self::Manual(ms) => Some(ms.load(Ordering::SeqCst)),
        }
    }
}

/// One configured tenant: its limits and what it used since this process started.
#[derive(Debug, Default)]
struct Tenant {
    limits: Limits,
    default_max_tokens: u64,
    totals: Totals,
    /// Its freshest windows from the shared store's replies, for plugins.
    fresh: fresh::Fresh,
}

/// Counts since this process started (per replica: the windows are what replicas share).
#[derive(Debug, Default)]
struct Totals {
    requests: AtomicU64,
    cache_hits: AtomicU64,
    refused: AtomicU64,
    unchecked: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cached_prompt_tokens: AtomicU64,
    cost_micros: AtomicU64,
}

/// Why the ledger could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("state.url_env: environment variable {0} is not set or blank")]
    MissingUrl(String),
    #[error("state.url_env: {0}")]
    BadUrl(String),
}

/// Options of [`Ledger::new`] beyond the store and tenants.
#[derive(Debug, Clone)]
pub struct Options {
    pub on_unavailable: OnUnavailable,
    pub timeout: Duration,
    /// `[state] limits_snapshot_max_age_ms`: see `fresh`.
    pub snapshot_max_age: Duration,
    pub clock: Clock,
    pub prices: Prices,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            on_unavailable: OnUnavailable::Closed,
            timeout: Duration::from_millis(100),
            snapshot_max_age: Duration::from_millis(1000),
            clock: Clock::Store,
            prices: Prices::default(),
        }
    }
}

impl Ledger {
    /// The ledger `[state]`, `[[tenant]]` and `[[price]]` describe; the Redis URL is read from
    /// `env` as a secret. Redis is connected on first use, so a proxy starts while it is down.
    pub fn build(
        config: &Config,
        env: &dyn EnvSource,
        metrics: LedgerMetrics,
    ) -> Result<Self, LedgerError> {
        let state = &config.state;
        let lease_ms = state.lease().as_millis() as u64;
        let store = match state.backend {
            StateBackend::Memory => Backend::Memory(Arc::new(MemoryStore::new(lease_ms))),
            StateBackend::Redis => {
                let var = state.url_env.clone().unwrap_or_default();
                let url = env.secret(&var).ok_or(LedgerError::MissingUrl(var))?;
                let workers = config.server.worker_count();
                let store = RedisStore::new(&url, &state.key_prefix, lease_ms, workers)
                    .map_err(LedgerError::BadUrl)?;
                Backend::Redis(Arc::new(store))
            }
        };
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let limits = Limits {
                    requests_per_minute: t.requests_per_minute,
                    tokens_per_minute: t.tokens_per_minute,
                    max_concurrent: t.max_concurrent,
                    budget_micros_per_day: t.budget_usd_per_day.map(price::micros_round),
                };
                (t.name.clone(), limits, t.default_max_tokens)
            })
            .collect();
        let options = Options {
            on_unavailable: state.on_unavailable,
            timeout: state.timeout(),
            snapshot_max_age: state.limits_snapshot_max_age(),
            clock: Clock::Store,
            prices: Prices::new(config.prices.clone()),
        };
        Ok(Self::new(store, tenants, options, metrics))
    }

    /// A ledger over `store` for `tenants` (name, limits, default `max_tokens`).
    pub fn new(
        store: Backend,
        tenants: Vec<(String, Limits, u64)>,
        options: Options,
        metrics: LedgerMetrics,
    ) -> Self {
        let tenants = tenants
            .into_iter()
            .map(|(name, limits, default_max_tokens)| {
                let fresh = fresh::Fresh::default();
                (name, Tenant { limits, default_max_tokens, totals: Totals::default(), fresh })
            })
            .collect();
        let inner = Inner {
            store,
            tenants,
            prices: options.prices,
            on_unavailable: options.on_unavailable,
            timeout: options.timeout,
            snapshot_max_age: options.snapshot_max_age,
            clock: options.clock,
            metrics,
        };
        Self { inner: Arc::new(inner) }
    }

    /// The Redis store, when `[state] backend = "redis"`: the response cache's shared level
    /// uses its connections.
    pub fn redis_store(&self) -> Option<Arc<RedisStore>> {
        match &self.inner.store {
            Backend::Redis(store) => Some(Arc::clone(store)),
            Backend::Memory(_) => None,
        }
    }

    /// The price table, for the cost of a request ([`Prices::cost_usd`]).
    pub fn prices(&self) -> &Prices {
        &self.inner.prices
    }

    /// The tenant's limits (all `None` for a tenant the config does not know).
    pub fn limits(&self, tenant: &str) -> Limits {
        self.inner.tenants.get(tenant).map(|t| t.limits).unwrap_or_default()
    }

    /// What a request to `targets` (its route and fallbacks: upstream, model) reserves: its
    /// estimated prompt plus `max_tokens` (or the tenant's `default_max_tokens`), and the
    /// worst-case cost of that on the dearest target.
    pub fn ask(
        &self,
        tenant: &str,
        targets: &[(&str, Option<&str>)],
        prompt_tokens: u64,
        max_tokens: Option<u64>,
    ) -> Ask {
        let default = self.inner.tenants.get(tenant).map_or(1024, |t| t.default_max_tokens);
        let max_tokens = max_tokens.unwrap_or(default);
        let usd = self.inner.prices.worst_case_usd(targets, prompt_tokens, max_tokens);
        Ask {
            cache_hit: false,
            tokens: prompt_tokens.saturating_add(max_tokens),
            cost_micros: price::micros_ceil(usd),
        }
    }
}

/// `GET /admin/usage`: one tenant's windows, limits and totals.
#[derive(Debug, Clone, Serialize)]
pub struct TenantUsage {
    pub tenant: String,
    pub limits: headers::LimitsView,
    /// `None` when the store did not answer (then `error` says why).
    pub window: Option<headers::WindowView>,
    pub remaining: Option<headers::Remaining>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub totals_since_start: TotalsView,
}

/// [`Totals`] as JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TotalsView {
    pub requests: u64,
    pub cache_hits: u64,
    pub refused: u64,
    /// Admitted uncounted while the store was unavailable (`on_unavailable = "open"`).
    pub unchecked: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_prompt_tokens: u64,
    pub cost_usd: f64,
}

impl Totals {
    fn view(&self) -> TotalsView {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TotalsView {
            requests: get(&self.requests),
            cache_hits: get(&self.cache_hits),
            refused: get(&self.refused),
            unchecked: get(&self.unchecked),
            prompt_tokens: get(&self.prompt_tokens),
            completion_tokens: get(&self.completion_tokens),
            cached_prompt_tokens: get(&self.cached_prompt_tokens),
            cost_usd: get(&self.cost_micros) as f64 / price::MICROS_PER_USD,
        }
    }
}
