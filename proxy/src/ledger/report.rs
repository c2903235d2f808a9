//! `GET /admin/usage`: every tenant's current windows, what is left of its limits, and its totals
//! since this process started.

use super::headers::RateState;
use super::{Ledger, TenantUsage};

impl Ledger {
    /// One tenant's usage (its windows read from the store: shared by every replica with Redis).
    pub async fn snapshot(&self, tenant: &str) -> TenantUsage {
        let limits = self.limits(tenant);
        let totals = self.inner.tenants.get(tenant).map(|t| t.totals.view()).unwrap_or_default();
        let (window, remaining, error) = match self.inner.windows(tenant).await {
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

    /// The tenant's limits and current windows (one store read: shared by every replica with
    /// Redis), for plugins that ask (`tenant-limits`). `None` for a tenant without limits, or
    /// when the store did not answer in time (counted as an unavailable `snapshot`).
    pub async fn rate(&self, tenant: &str) -> Option<RateState> {
        let limits = self.limits(tenant);
        if !limits.any() {
            return None;
        }
        match self.inner.windows(tenant).await {
            Ok(windows) => Some(RateState { limits, windows }),
            Err(e) => {
                self.inner.metrics.unavailable("snapshot");
                tracing::debug!(tenant, "no limits for plugins: {e}");
                None
            }
        }
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
