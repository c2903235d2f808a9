//! The in-process store: every tenant's windows behind one mutex, held for a few comparisons and
//! never across an await. Exact for one proxy; N replicas with it allow N times the limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::store::{Ask, Exceeded, Limits, Settlement, Store, Unavailable, Verdict};
use super::window::{self, Windows};

/// Counters of every tenant seen so far.
#[derive(Debug)]
pub struct MemoryStore {
    tenants: Mutex<HashMap<String, Counters>>,
    /// How long a concurrency slot may be held unsettled, ms.
    lease_ms: u64,
}

/// One tenant's windows.
#[derive(Debug, Default)]
struct Counters {
    minute: u64,
    requests: u64,
    tokens: u64,
    day: u64,
    cost_micros: u64,
    /// Reservation id → lease expiry (ms): `lease_seconds` bound a slot here as they bound a
    /// silent replica's slots in Redis, although a lost slot cannot happen within one process.
    in_flight: HashMap<u64, u64>,
}

impl Counters {
    /// Starts new windows when `now_ms` is past the current ones, and drops expired leases.
    fn roll(&mut self, now_ms: u64) {
        if window::minute(now_ms) != self.minute {
            self.minute = window::minute(now_ms);
            self.requests = 0;
            self.tokens = 0;
        }
        if window::day(now_ms) != self.day {
            self.day = window::day(now_ms);
            self.cost_micros = 0;
        }
        self.in_flight.retain(|_, expiry| *expiry > now_ms);
    }

    fn windows(&self, now_ms: u64) -> Windows {
        Windows {
            now_ms,
            requests: self.requests,
            tokens: self.tokens,
            cost_micros: self.cost_micros,
            concurrent: self.in_flight.len() as u64,
        }
    }

    fn exceeded(&self, limits: &Limits, ask: &Ask) -> Exceeded {
        let over = |used: u64, want: u64, limit: Option<u64>| {
            limit.is_some_and(|limit| used.saturating_add(want) > limit)
        };
        let mut bits = 0;
        if over(self.requests, 1, limits.requests_per_minute) {
            bits |= Exceeded::REQUESTS;
        }
        if !ask.cache_hit {
            if over(self.tokens, ask.tokens, limits.tokens_per_minute) {
                bits |= Exceeded::TOKENS;
            }
            if over(self.in_flight.len() as u64, 1, limits.max_concurrent) {
                bits |= Exceeded::CONCURRENT;
            }
            // A request that costs nothing (a free upstream) spends no budget, even a spent one.
            if ask.cost_micros > 0
                && over(self.cost_micros, ask.cost_micros, limits.budget_micros_per_day)
            {
                bits |= Exceeded::BUDGET;
            }
        }
        Exceeded(bits)
    }
}

impl MemoryStore {
    pub fn new(lease_ms: u64) -> Self {
        Self { tenants: Mutex::new(HashMap::new()), lease_ms }
    }

    /// Runs `f` on the tenant's counters, rolled to `now_ms`.
    fn with<T>(
        &self,
        tenant: &str,
        now_ms: Option<u64>,
        f: impl FnOnce(&mut Counters, u64) -> T,
    ) -> T {
        let now_ms = now_ms.unwrap_or_else(system_now_ms);
        // A panic while holding the lock cannot leave counters half-updated in a way that
        // matters more than refusing every request would: keep serving.
        let mut tenants = self.tenants.lock().unwrap_or_else(|poison| poison.into_inner());
        let counters = match tenants.get_mut(tenant) {
            Some(counters) => counters,
            None => tenants.entry(tenant.to_string()).or_default(),
        };
        counters.roll(now_ms);
        f(counters, now_ms)
    }
}

impl Store for MemoryStore {
    async fn admit(
        &self,
        tenant: &str,
        limits: &Limits,
        ask: &Ask,
        id: u64,
        now_ms: Option<u64>,
    ) -> Result<Verdict, Unavailable> {
        Ok(self.with(tenant, now_ms, |c, now_ms| {
            let exceeded = c.exceeded(limits, ask);
            if exceeded.none() {
                c.requests += 1;
                if !ask.cache_hit {
                    c.tokens = c.tokens.saturating_add(ask.tokens);
                    c.cost_micros = c.cost_micros.saturating_add(ask.cost_micros);
                    c.in_flight.insert(id, now_ms.saturating_add(self.lease_ms));
                }
            }
            Verdict { exceeded, windows: c.windows(now_ms) }
        }))
    }

    async fn settle(
        &self,
        tenant: &str,
        s: &Settlement,
        now_ms: Option<u64>,
    ) -> Result<Windows, Unavailable> {
        Ok(self.with(tenant, now_ms, |c, now_ms| {
            c.in_flight.remove(&s.id);
            let same_minute = window::minute(s.admitted_ms) == window::minute(now_ms);
            c.tokens = adjust(c.tokens, same_minute, s.reserved_tokens, s.used_tokens);
            let same_day = window::day(s.admitted_ms) == window::day(now_ms);
            c.cost_micros = adjust(c.cost_micros, same_day, s.reserved_micros, s.used_micros);
            c.windows(now_ms)
        }))
    }

    async fn windows(&self, tenant: &str, now_ms: Option<u64>) -> Result<Windows, Unavailable> {
        Ok(self.with(tenant, now_ms, |c, now_ms| c.windows(now_ms)))
    }
}

/// A counter after settling: the reservation replaced by the use in the window it was made in;
/// once that window is gone, only the use beyond the reservation lands in the current one.
fn adjust(counter: u64, same_window: bool, reserved: u64, used: u64) -> u64 {
    if same_window {
        counter.saturating_sub(reserved).saturating_add(used)
    } else {
        counter.saturating_add(used.saturating_sub(reserved))
    }
}

/// The process clock, Unix milliseconds (0 before 1970, which no deployment sees).
pub fn system_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
