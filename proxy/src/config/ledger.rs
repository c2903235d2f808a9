//! The usage ledger's configuration: `[[price]]` (what tokens cost), `[state]` (where counters
//! live), and the checks of both together with the tenants' limits.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use super::{Config, Problem};

/// `[[price]]`: USD per million tokens on one upstream, for one model or for all of its models.
#[derive(Debug, Clone, Deserialize)]
pub struct PriceConfig {
    /// The `[[upstream]]` this price applies to.
    pub upstream: String,
    /// The model it applies to (also its dated snapshots, `gpt-4.1` covers `gpt-4.1-2025-04-14`);
    /// absent: every model of the upstream without a more specific entry.
    pub model: Option<String>,
    /// Prompt tokens that were not served from the upstream's prompt cache.
    #[serde(default)]
    pub input_usd_per_mtok: f64,
    /// Completion tokens (reasoning tokens included, as upstreams bill them).
    #[serde(default)]
    pub output_usd_per_mtok: f64,
    /// Prompt tokens the upstream served from its prompt cache; absent: the input price.
    pub cached_input_usd_per_mtok: Option<f64>,
}

/// `[state]`: where the ledger's counters live.
#[derive(Debug, Clone, Deserialize)]
pub struct StateConfig {
    /// `memory` (this process only) or `redis` (shared by every replica pointing at it).
    #[serde(default)]
    pub backend: StateBackend,
    /// Environment variable holding the Redis URL (`redis://[:password@]host:port[/db]` or
    /// `unix:///path/to/redis.sock`); it may hold a password, so it is a secret.
    pub url_env: Option<String>,
    /// What admission does when Redis does not answer in time.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// Limit for one Redis call; past it Redis counts as unavailable for that request.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a replica's concurrency slots count in Redis after its last script: a replica
    /// that dies mid-request cannot hold its tenants' slots for longer than this (in memory:
    /// longest a slot is held unsettled).
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// With `redis`: how old (ms) the tenant windows this replica last got from Redis (each
    /// admission and settlement returns them) may be when plugins that import `tenant-limits`
    /// get them instead of a read of their own, which would be a second round trip per request.
    /// 0: always read. Plugins' view only; admission is always exact. docs/limits.md.
    #[serde(default = "default_limits_snapshot_max_age_ms")]
    pub limits_snapshot_max_age_ms: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackend::default(),
            url_env: None,
            on_unavailable: OnUnavailable::default(),
            timeout_ms: default_timeout_ms(),
            lease_seconds: default_lease_seconds(),
            key_prefix: default_key_prefix(),
            limits_snapshot_max_age_ms: default_limits_snapshot_max_age_ms(),
        }
    }
}

impl StateConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
    pub fn limits_snapshot_max_age(&self) -> Duration {
        Duration::from_millis(self.limits_snapshot_max_age_ms)
    }
}

/// `state.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// Counters in this process: exact for one proxy, N× the limits for N replicas.
    #[default]
    Memory,
    /// Counters in Redis, updated by atomic scripts: exact for any number of replicas.
    Redis,
}

/// `state.on_unavailable`: admission when the backend cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnavailable {
    /// Refuse (503 `ledger_unavailable`): nothing is spent unchecked.
    #[default]
    Closed,
    /// Admit without counting; logged and counted in `/metrics`.
    Open,
}

fn default_timeout_ms() -> u64 {
    100
}

fn default_lease_seconds() -> u64 {
    900
}

fn default_limits_snapshot_max_age_ms() -> u64 {
    1000
}

fn default_key_prefix() -> String {
    "switchyard".into()
}

/// Every problem with the tenants' limits, the prices and `[state]`.
pub(super) fn validate(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push =
        |path: String, message: &str| out.push(Problem { path, message: message.into() });
    for (i, tenant) in config.tenants.iter().enumerate() {
        let at = |key: &str| format!("tenant[{i}].{key}");
        for (key, value) in [
            ("requests_per_minute", tenant.requests_per_minute),
            ("tokens_per_minute", tenant.tokens_per_minute),
            ("max_concurrent", tenant.max_concurrent),
            ("default_max_tokens", Some(tenant.default_max_tokens)),
        ] {
            if value == Some(0) {
                push(at(key), "must be at least 1; leave it out for no limit");
            }
        }
        if let Some(budget) = tenant.budget_usd_per_day
            && !(budget.is_finite() && budget >= 0.0)
        {
            push(at("budget_usd_per_day"), "must be a finite number of USD, 0 or more");
        }
    }
    check_prices(config, &mut push);
    check_state(&config.state, &mut push);
    out
}

fn check_prices(config: &Config, push: &mut impl FnMut(String, &str)) {
    let upstreams: HashSet<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    let mut seen = HashSet::new();
    for (i, price) in config.prices.iter().enumerate() {
        let at = |key: &str| format!("price[{i}].{key}");
        if !upstreams.contains(price.upstream.as_str()) {
            push(at("upstream"), &format!("no [[upstream]] is named `{}`", price.upstream));
        }
        if price.model.as_deref() == Some("") {
            push(at("model"), "must not be empty; leave it out for every model of the upstream");
        }
        if !seen.insert((price.upstream.as_str(), price.model.as_deref())) {
            push(at("model"), "another [[price]] has the same upstream and model");
        }
        for (key, value) in [
            ("input_usd_per_mtok", Some(price.input_usd_per_mtok)),
            ("output_usd_per_mtok", Some(price.output_usd_per_mtok)),
            ("cached_input_usd_per_mtok", price.cached_input_usd_per_mtok),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                push(at(key), "must be a finite price, 0 or more");
            }
        }
    }
}

fn check_state(state: &StateConfig, push: &mut impl FnMut(String, &str)) {
    match (state.backend, &state.url_env) {
        (StateBackend::Redis, None) => {
            push(
                "state.url_env".into(),
                "backend = \"redis\" needs url_env: the variable holding the Redis URL",
            );
        }
        (StateBackend::Memory, Some(_)) => {
            push("state.url_env".into(), "is only read with backend = \"redis\"");
        }
        (_, Some(name)) if !super::validate::is_env_name(name) => {
            push("state.url_env".into(), &format!("`{name}` is not an environment variable name"));
        }
        _ => {}
    }
    if state.timeout_ms == 0 || state.timeout_ms > 60_000 {
        push("state.timeout_ms".into(), "must be between 1 and 60000");
    }
    if state.lease_seconds == 0 {
        push("state.lease_seconds".into(), "must be at least 1");
    }
    // Older than a window, a snapshot would show plugins counters of a minute long gone.
    if state.limits_snapshot_max_age_ms > 60_000 {
        push("state.limits_snapshot_max_age_ms".into(), "must be between 0 and 60000");
    }
    if state.key_prefix.is_empty() || state.key_prefix.bytes().any(|b| b.is_ascii_whitespace()) {
        push("state.key_prefix".into(), "must be non-empty, without white space");
    }
}
