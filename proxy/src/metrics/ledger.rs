//! The usage ledger's metrics: tokens and cost by tenant, upstream and model (fed by
//! [`crate::ledger::Reservation::settle`]), refusals by limit, and how often the shared store was
//! unavailable and what admission did then.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::series::Series;
use crate::ledger::{Exceeded, Usage};

/// Labels of settled usage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub tenant: String,
    pub upstream: String,
    /// The model the upstream answered with, or empty when unknown.
    pub model: String,
}

/// Labels of tokens: [`UsageLabels`] and which kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub tenant: String,
    pub upstream: String,
    pub model: String,
    /// `prompt`, `completion` or `cached_prompt` (a part of `prompt`).
    pub kind: &'static str,
}

/// Labels of a refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub tenant: String,
    /// The config name of the limit: `requests_per_minute`, `tokens_per_minute`,
    /// `max_concurrent` or `budget_usd_per_day`.
    pub limit: &'static str,
}

/// Labels of a store call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// `admit`, `settle`, `snapshot` (a read for plugins) or `report` (a read for
    /// `GET /admin/usage`; its failures count as `snapshot`).
    pub op: &'static str,
}

/// Labels naming a tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

/// The ledger's counters (cheap to clone: each family is shared).
#[derive(Clone, Debug, Default)]
pub struct LedgerMetrics {
    pub tokens: Series<TokenLabels, Counter>,
    pub cost_usd: Series<UsageLabels, Counter<f64>>,
    pub refusals: Family<RefusalLabels, Counter>,
    pub unavailable: Family<OpLabels, Counter>,
    pub open_admits: Family<TenantLabels, Counter>,
    /// Calls to the store: with Redis, at most one round trip each (calls that wait together share
    /// one, `ledger::batch`), so this bounds how many a request
    /// makes (docs/limits.md, "Round trips").
    pub store_calls: Family<OpLabels, Counter>,
}

impl LedgerMetrics {
    /// Registers every family (`switchyard_tokens_total`, `switchyard_cost_usd_total`,
    /// `switchyard_ledger_refusals_total`, `switchyard_ledger_unavailable_total`,
    /// `switchyard_ledger_open_admits_total`, `switchyard_ledger_store_calls_total`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tokens",
            "Tokens used, by tenant, upstream, model and kind",
            self.tokens.family().clone(),
        );
        registry.register(
            "cost_usd",
            "Cost in USD, by tenant, upstream and model",
            self.cost_usd.family().clone(),
        );
        registry.register(
            "ledger_refusals",
            "Requests refused by a tenant limit, by limit",
            self.refusals.clone(),
        );
        registry.register(
            "ledger_unavailable",
            "Ledger store calls that failed or timed out, by operation",
            self.unavailable.clone(),
        );
        registry.register(
            "ledger_open_admits",
            "Requests admitted uncounted while the store was unavailable (on_unavailable = open)",
            self.open_admits.clone(),
        );
        registry.register(
            "ledger_store_calls",
            "Calls to the ledger's store (with Redis, at most one round trip each), by operation",
            self.store_calls.clone(),
        );
    }

    /// Counts one request's usage and cost.
    pub fn usage(&self, tenant: &str, upstream: &str, model: &str, usage: &Usage, usd: f64) {
        let same = |t: &str, u: &str, m: &str| t == tenant && u == upstream && m == model;
        for (kind, n) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
            ("cached_prompt", usage.cached_prompt_tokens),
        ] {
            if n > 0 {
                let matches =
                    |l: &TokenLabels| l.kind == kind && same(&l.tenant, &l.upstream, &l.model);
                let labels = || TokenLabels {
                    tenant: tenant.to_string(),
                    upstream: upstream.to_string(),
                    model: model.to_string(),
                    kind,
                };
                self.tokens.with(matches, labels, |c| c.inc_by(n));
            }
        }
        let matches = |l: &UsageLabels| same(&l.tenant, &l.upstream, &l.model);
        let labels = || UsageLabels {
            tenant: tenant.to_string(),
            upstream: upstream.to_string(),
            model: model.to_string(),
        };
        self.cost_usd.with(matches, labels, |c| c.inc_by(usd));
    }

    /// Counts a refusal under every limit it exceeded.
    pub fn refused(&self, tenant: &str, exceeded: Exceeded) {
        for limit in exceeded.names() {
            self.refusals.get_or_create(&RefusalLabels { tenant: tenant.to_string(), limit }).inc();
        }
    }

    pub fn unavailable(&self, op: &'static str) {
        self.unavailable.get_or_create(&OpLabels { op }).inc();
    }

    pub fn store_call(&self, op: &'static str) {
        self.store_calls.get_or_create(&OpLabels { op }).inc();
    }

    pub fn open_admit(&self, tenant: &str) {
        self.open_admits.get_or_create(&TenantLabels { tenant: tenant.to_string() }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_counted_per_tenant_upstream_model_and_kind() {
        let metrics = LedgerMetrics::default();
        let usage =
            |p, c| Usage { prompt_tokens: p, completion_tokens: c, cached_prompt_tokens: 0 };
        metrics.usage("acme", "local", "m1", &usage(10, 1), 0.5);
        metrics.usage("acme", "local", "m2", &usage(20, 2), 0.25);
        metrics.usage("beta", "local", "m1", &usage(30, 0), 0.0);
        metrics.usage("acme", "hosted", "m1", &usage(40, 4), 1.0);
        metrics.usage("acme", "local", "m1", &usage(5, 5), 0.5);
        // The same names in other labels are another series.
        metrics.usage("m1", "local", "acme", &usage(7, 0), 0.0);
        let tokens = |tenant: &str, upstream: &str, model: &str, kind| {
            let labels = TokenLabels {
                tenant: tenant.into(),
                upstream: upstream.into(),
                model: model.into(),
                kind,
            };
            metrics.tokens.family().get_or_create(&labels).get()
        };
        assert_eq!(tokens("acme", "local", "m1", "prompt"), 15);
        assert_eq!(tokens("acme", "local", "m1", "completion"), 6);
        assert_eq!(tokens("acme", "local", "m2", "prompt"), 20);
        assert_eq!(tokens("beta", "local", "m1", "prompt"), 30);
        assert_eq!(tokens("m1", "local", "acme", "prompt"), 7);
        assert_eq!(tokens("acme", "hosted", "m1", "completion"), 4);
        let cost = |tenant: &str, model: &str| {
            let labels = UsageLabels {
                tenant: tenant.into(),
                upstream: "local".into(),
                model: model.into(),
            };
            metrics.cost_usd.family().get_or_create(&labels).get()
        };
        assert_eq!((cost("acme", "m1"), cost("acme", "m2")), (1.0, 0.25));
        // Nothing counted, nothing created: no completion series for beta, no cached_prompt at all.
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(!text.contains("cached_prompt"), "{text}");
        assert!(
            !text.contains("tenant=\"beta\",upstream=\"local\",model=\"m1\",kind=\"completion\"")
        );
    }
}
