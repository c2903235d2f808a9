//! The routing decision, pure: which tier a request goes to and why, in the documented order of
//! precedence (residency, a low budget, images, then only for alias requests: tenant, header
//! hint, alias, and the `auto` prompt rules). No host calls here, so it is tested natively.

use switchyard_plugin_sdk::Request;

use crate::config::{AUTO, Residency, RouterConfig};
use crate::features::{Features, hard_keyword};

/// Why a request went to its tier; the value of the `route.reason` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Residency,
    Budget,
    Images,
    Tenant,
    Hint,
    Alias,
    HardTokens,
    CodeBlocks,
    Depth,
    Keyword,
    Easy,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::Residency => "residency",
            Reason::Budget => "budget",
            Reason::Images => "images",
            Reason::Tenant => "tenant",
            Reason::Hint => "hint",
            Reason::Alias => "alias",
            Reason::HardTokens => "hard_tokens",
            Reason::CodeBlocks => "code_blocks",
            Reason::Depth => "depth",
            Reason::Keyword => "keyword",
            Reason::Easy => "easy",
        }
    }
}

/// A routing decision: the tier's name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub tier: String,
    pub reason: Reason,
}

/// The tier for `req`, or `None` to leave the request on the proxy's default route (a model that
/// is not an alias, and no residency, budget or images rule applies). `budget_left_usd` is the
/// tenant's remaining budget today (`None`: no budget, or not known), for the
/// `local_when_budget_below_usd` rule.
pub fn decide(
    config: &RouterConfig,
    req: &Request,
    budget_left_usd: Option<f64>,
) -> Option<Routed> {
    let routed = |tier: &str, reason| Some(Routed { tier: tier.to_string(), reason });
    if config.residency == Residency::LocalOnly && restricted(config, req) {
        return routed(&config.residency_tier, Reason::Residency);
    }
    let images = req.endpoint == "/v1/images/generations";
    if !images && budget_low(config, budget_left_usd) {
        return routed(&config.budget_tier, Reason::Budget);
    }
    if let (true, Some(tier)) = (images, &config.images) {
        return routed(tier, Reason::Images);
    }
    let alias = config.aliases.get(req.model.as_deref()?)?;
    if let Some(tier) = req.tenant.as_ref().and_then(|t| config.tenants.get(t)) {
        return routed(tier, Reason::Tenant);
    }
    if let Some(hint) = hint(config, req) {
        return match config.aliases.get(hint).map(String::as_str) {
            Some(AUTO) => Some(auto(config, req)),
            Some(tier) => routed(tier, Reason::Hint),
            None => routed(hint, Reason::Hint),
        };
    }
    if alias == AUTO { Some(auto(config, req)) } else { routed(alias, Reason::Alias) }
}

/// Whether the budget rule is on and the remaining budget is below its threshold, or spent.
pub fn budget_low(config: &RouterConfig, budget_left_usd: Option<f64>) -> bool {
    match (config.local_when_budget_below_usd, budget_left_usd) {
        (Some(threshold), Some(left)) => left < threshold || left <= 0.0,
        _ => false,
    }
}

/// Whether an earlier plugin tagged the request with one of `residency_tags`. A tag whose value
/// is "0", "false" or empty (say, a redactor reporting zero findings) does not count.
fn restricted(config: &RouterConfig, req: &Request) -> bool {
    req.tags.iter().any(|(key, value)| {
        config.residency_tags.iter().any(|t| t == key)
            && !matches!(value.trim(), "" | "0" | "false")
    })
}

/// The hint header's value when it names a tier or an alias; any other value is ignored.
fn hint<'a>(config: &RouterConfig, req: &'a Request) -> Option<&'a str> {
    let name = config.hint_header.as_deref()?;
    let (_, value) = req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    let value = value.trim();
    (config.tiers.contains_key(value) || config.aliases.contains_key(value)).then_some(value)
}

/// The `auto` rules: the first hard signal sends the prompt to `hard_tier`, else `easy_tier`.
fn auto(config: &RouterConfig, req: &Request) -> Routed {
    let f = Features::of(&req.messages);
    let over = |value: usize, threshold: usize| threshold > 0 && value >= threshold;
    let reason = if over(f.approx_tokens, config.hard_min_tokens) {
        Reason::HardTokens
    } else if over(f.code_blocks, config.code_blocks_hard) {
        Reason::CodeBlocks
    } else if over(f.depth, config.depth_hard) {
        Reason::Depth
    } else if hard_keyword(&req.messages, &config.hard_keywords).is_some() {
        Reason::Keyword
    } else {
        Reason::Easy
    };
    let tier = if reason == Reason::Easy { &config.easy_tier } else { &config.hard_tier };
    Routed { tier: tier.clone(), reason }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
