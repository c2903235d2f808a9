//! Admission, settlement and release: what the request path calls, and the [`Reservation`] an
//! admission holds until one of them ends it. A reservation dropped without either (a task
//! cancelled by a disconnect the caller did not handle) is charged in full, off the request
//! path: the ledger may overcount, never undercount.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::headers::{RateState, Refusal};
use super::store::{Ask, Settlement, Store, Unavailable, Verdict};
use super::usage::Usage;
use super::{Backend, Inner, Ledger, price};
use crate::config::OnUnavailable;

/// Largest amount the ledger counts at once: Redis computes in Lua numbers (doubles) and 64-bit
/// `INCRBY`, exact up to here (2^53 - 1 tokens, or micro-USD: about 9 billion USD).
pub(super) const MAX_EXACT: u64 = (1 << 53) - 1;

/// An admitted request: its reservation, and the rate state for its answer's headers.
#[derive(Debug)]
pub struct Admission {
    pub reservation: Reservation,
    pub rate: RateState,
}

/// What one admitted request holds in the ledger until it is settled or released.
#[derive(Debug)]
pub struct Reservation {
    inner: Arc<Inner>,
    tenant: String,
    settlement: Settlement,
    /// Admitted without counting (the store was unavailable and `on_unavailable = "open"`):
    /// nothing to give back, but the usage still counts in totals and metrics.
    unchecked: bool,
    /// Settled or released: nothing left for `Drop` to do.
    done: bool,
}

impl Ledger {
    /// Reserves `ask` for `tenant` (1 request, its tokens and worst-case cost, a concurrency
    /// slot), or refuses with every limit it would pass and when they reset. Atomic in the store:
    /// admissions running at the same time, on any replica, never pass a limit together.
    pub async fn admit(&self, tenant: &str, ask: Ask) -> Result<Admission, Refusal> {
        let ask = Ask {
            cache_hit: false,
            tokens: ask.tokens.min(MAX_EXACT),
            cost_micros: ask.cost_micros.min(MAX_EXACT),
        };
        let id = fastrand::u64(..);
        let (rate, unchecked) = self.check(tenant, &ask, id).await?;
        let reservation = Reservation {
            inner: Arc::clone(&self.inner),
            tenant: tenant.to_string(),
            settlement: Settlement {
                id,
                admitted_ms: rate.windows.now_ms,
                reserved_tokens: if unchecked { 0 } else { ask.tokens },
                used_tokens: 0,
                reserved_micros: if unchecked { 0 } else { ask.cost_micros },
                used_micros: 0,
            },
            unchecked,
            done: false,
        };
        Ok(Admission { reservation, rate })
    }

    /// Admits a request answered from the response cache: it counts against requests per minute
    /// only, holds nothing and needs no settlement.
    pub async fn admit_cache_hit(&self, tenant: &str) -> Result<RateState, Refusal> {
        let ask = Ask { cache_hit: true, tokens: 0, cost_micros: 0 };
        let (rate, _) = self.check(tenant, &ask, 0).await?;
        if let Some(t) = self.inner.tenants.get(tenant) {
            t.totals.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(rate)
    }

    /// The store's verdict, with the unavailable policy applied; `true` when admitted unchecked.
    async fn check(&self, tenant: &str, ask: &Ask, id: u64) -> Result<(RateState, bool), Refusal> {
        let inner = &self.inner;
        let known = inner.tenants.get(tenant);
        let limits = known.map(|t| t.limits).unwrap_or_default();
        let count = |pick: fn(&super::Totals) -> &std::sync::atomic::AtomicU64| {
            if let Some(t) = known {
                pick(&t.totals).fetch_add(1, Ordering::Relaxed);
            }
        };
        match inner.admit(tenant, ask, id).await {
            Ok(Verdict { exceeded, windows }) if exceeded.none() => {
                count(|t| &t.requests);
                Ok((RateState { limits, windows }, false))
            }
            Ok(Verdict { exceeded, windows }) => {
                count(|t| &t.refused);
                inner.metrics.refused(tenant, exceeded);
                Err(Refusal::limited(RateState { limits, windows }, exceeded))
            }
            Err(e) => {
                inner.metrics.unavailable("admit");
                match inner.on_unavailable {
                    OnUnavailable::Closed => {
                        tracing::warn!(tenant, error = %e, "ledger unavailable: request refused");
                        count(|t| &t.refused);
                        Err(Refusal::unavailable(limits))
                    }
                    OnUnavailable::Open => {
                        tracing::warn!(tenant, error = %e, "ledger unavailable: admitted unchecked");
                        inner.metrics.open_admit(tenant);
                        count(|t| &t.requests);
                        count(|t| &t.unchecked);
                        // The store did not count it: the headers show the full limits, the
                        // best this replica knows while the store is down.
                        let now_ms =
                            inner.clock.now_ms().unwrap_or_else(super::memory::system_now_ms);
                        let windows = super::Windows { now_ms, ..Default::default() };
                        Ok((RateState { limits, windows }, true))
                    }
                }
            }
        }
    }
}

impl Reservation {
    /// The tenant this reservation is held for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Ends the reservation with what the request really used on `upstream` (and `model`):
    /// the reserved tokens and cost are replaced by the real ones, the concurrency slot freed,
    /// totals and `/metrics` counted. Returns the cost in USD (for the access log).
    pub async fn settle(mut self, upstream: &str, model: Option<&str>, usage: &Usage) -> f64 {
        self.done = true;
        let usd = self.inner.prices.cost_usd(upstream, model, usage);
        self.settlement.used_tokens = usage.total().min(MAX_EXACT);
        self.settlement.used_micros = price::micros_round(usd).min(MAX_EXACT);
        self.inner.record(&self.tenant, upstream, model, usage, usd, self.settlement.used_micros);
        if !self.unchecked {
            self.inner.settle(&self.tenant, &self.settlement).await;
        }
        usd
    }

    /// Ends the reservation of a request that failed before any upstream answered: nothing was
    /// used; the request still counts against requests per minute.
    pub async fn release(mut self) {
        self.done = true;
        if !self.unchecked {
            self.inner.settle(&self.tenant, &self.settlement).await;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done || self.unchecked {
            return;
        }
        // Charged as reserved: the worst case the admission allowed.
        let mut settlement = self.settlement.clone();
        settlement.used_tokens = settlement.reserved_tokens;
        settlement.used_micros = settlement.reserved_micros;
        let (inner, tenant) = (Arc::clone(&self.inner), std::mem::take(&mut self.tenant));
        tracing::debug!(tenant, "reservation dropped unsettled: charged as reserved");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { inner.settle(&tenant, &settlement).await });
        }
        // Without a runtime (shutdown) the slot's lease and the windows expire on their own.
    }
}

impl Inner {
    async fn admit(&self, tenant: &str, ask: &Ask, id: u64) -> Result<Verdict, Unavailable> {
        let limits = self.tenants.get(tenant).map(|t| t.limits).unwrap_or_default();
        let now = self.clock.now_ms();
        let call = async {
            match &self.store {
                Backend::Memory(store) => store.admit(tenant, &limits, ask, id, now).await,
                Backend::Redis(store) => store.admit(tenant, &limits, ask, id, now).await,
            }
        };
        self.metrics.store_call("admit");
        let verdict = self.timed(call).await?;
        self.note(tenant, verdict.windows);
        Ok(verdict)
    }

    /// Settles in the store; a failure is logged and counted (the windows expire on their own,
    /// the slot's lease ends), never surfaced to a client whose answer is already out.
    async fn settle(&self, tenant: &str, settlement: &Settlement) {
        let now = self.clock.now_ms();
        let call = async {
            match &self.store {
                Backend::Memory(store) => store.settle(tenant, settlement, now).await,
                Backend::Redis(store) => store.settle(tenant, settlement, now).await,
            }
        };
        self.metrics.store_call("settle");
        match self.timed(call).await {
            Ok(windows) => self.note(tenant, windows),
            Err(e) => {
                self.metrics.unavailable("settle");
                tracing::warn!(tenant, error = %e, "ledger: settlement lost");
            }
        }
    }

    /// The tenant's windows, read for `op` (`snapshot`: plugins; `report`: the admin view).
    pub(super) async fn windows(
        &self,
        tenant: &str,
        op: &'static str,
    ) -> Result<super::Windows, Unavailable> {
        let now = self.clock.now_ms();
        let call = async {
            match &self.store {
                Backend::Memory(store) => store.windows(tenant, now).await,
                Backend::Redis(store) => store.windows(tenant, now).await,
            }
        };
        self.metrics.store_call(op);
        let windows = self.timed(call).await?;
        self.note(tenant, windows);
        Ok(windows)
    }

    /// Keeps the shared store's latest windows of a tenant for its plugins (module `fresh`);
    /// in memory plugins read the counters themselves.
    fn note(&self, tenant: &str, windows: super::Windows) {
        if let (Backend::Redis(_), Some(t)) = (&self.store, self.tenants.get(tenant)) {
            t.fresh.note(windows);
        }
    }

    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, Unavailable>>,
    ) -> Result<T, Unavailable> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Totals and `/metrics` for one settled request.
    fn record(
        &self,
        tenant: &str,
        upstream: &str,
        model: Option<&str>,
        usage: &Usage,
        usd: f64,
        micros: u64,
    ) {
        self.metrics.usage(tenant, upstream, model.unwrap_or(""), usage, usd);
        if let Some(t) = self.tenants.get(tenant) {
            let totals = &t.totals;
            totals.prompt_tokens.fetch_add(usage.prompt_tokens, Ordering::Relaxed);
            totals.completion_tokens.fetch_add(usage.completion_tokens, Ordering::Relaxed);
            totals.cached_prompt_tokens.fetch_add(usage.cached_prompt_tokens, Ordering::Relaxed);
            totals.cost_micros.fetch_add(micros, Ordering::Relaxed);
        }
    }
}
