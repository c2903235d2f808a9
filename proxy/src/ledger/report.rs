//! `GET /admin/usage`: every tenant's current windows, what is left of its limits, and its totals
//! since this process started.

use super::fresh::Seen;
use super::headers::RateState;
use super::{Backend, Inner, Ledger, TenantUsage, Windows};

impl Ledger {
    /// One tenant's usage (its windows read from the store: shared by every replica with Redis).
    pub async fn snapshot(&self, tenant: &str) -> TenantUsage {
        let limits = self.limits(tenant);
        let totals = self.inner.tenants.get(tenant).map(|t| t.totals.view()).unwrap_or_default();
        let (window, remaining, error) = match self.inner.windows(tenant, "report").await {
            Ok(windows) => {
                let rate = RateState { limits, windows };
                (Some(windows.into()), Some(rate.remaining()), None)
            }
            Err(e) => {
                self.inner.metrics.unavailable("snapshot");
                (None, None, Some(e.to_string()))
            }
        };
        TenantUsage {
            tenant: tenant.to_string(),
            limits: limits.into(),
            window,
            remaining,
            error,
            totals_since_start: totals,
        }
    }

    /// The tenant's limits and windows, for plugins that ask (`tenant-limits`). `None` for a
    /// tenant without limits, or when the store did not answer in time (counted as an
    /// unavailable `snapshot`). In memory: read now, exact. In Redis: the windows of this
    /// replica's latest reply from Redis when it is at most `limits_snapshot_max_age_ms` old,
    /// else one read shared by the tenant's concurrent requests (module `fresh`).
    pub async fn rate(&self, tenant: &str) -> Option<RateState> {
        let known = self.inner.tenants.get(tenant)?;
        let limits = known.limits;
        if !limits.any() {
            return None;
        }
        let windows = match &self.inner.store {
            Backend::Memory(_) => self.inner.read_for_plugins(tenant).await?,
            Backend::Redis(_) => {
                let read = || self.inner.read_for_plugins(tenant);
                let seen = known.fresh.get_or_read(self.inner.snapshot_max_age, read).await?;
                self.inner.aged(seen)
            }
        };
        Some(RateState { limits, windows })
    }

    /// Every configured tenant's usage, by name.
    pub async fn report(&self) -> Vec<TenantUsage> {
        let mut names: Vec<&String> = self.inner.tenants.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.snapshot(name).await);
        }
        out
    }
}

impl Inner {
    /// The tenant's windows read now for plugins; `None` (counted, logged) when the store failed.
    async fn read_for_plugins(&self, tenant: &str) -> Option<Windows> {
        match self.windows(tenant, "snapshot").await {
            Ok(windows) => Some(windows),
            Err(e) => {
                self.metrics.unavailable("snapshot");
                tracing::debug!(tenant, "no limits for plugins: {e}");
                None
            }
        }
    }

    /// Windows seen earlier as they stand now: their clock moved on by the time since (the
    /// test's clock when it sets one), a minute or day that ended since started again at 0.
    fn aged(&self, seen: Seen) -> Windows {
        let elapsed = seen.at.elapsed().as_millis() as u64;
        let now_ms =
            self.clock.now_ms().unwrap_or_else(|| seen.windows.now_ms.saturating_add(elapsed));
        seen.windows.rolled_to(now_ms)
    }
}
