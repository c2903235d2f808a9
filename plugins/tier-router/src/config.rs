//! The router's config: tiers, aliases and rules as the operator writes them (every key documented
//! with its default in plugins/tier-router/README.md), and the check that refuses a config whose
//! names do not fit together, listing every problem at once.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The alias value that means "decide by the rules" rather than a fixed tier.
pub const AUTO: &str = "auto";

/// Where a tier sends a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// An upstream name from the proxy config.
    pub upstream: String,
    /// The model name sent upstream; none keeps the client's (or the upstream's own `model` pin).
    #[serde(default)]
    pub model: Option<String>,
    /// Upstreams tried after `upstream` fails (connect error, 5xx, 429, timeout before the answer).
    #[serde(default)]
    pub fallbacks: Vec<String>,
}

/// The whole `config` table of the router's `[[plugin]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Tier name → where it goes.
    pub tiers: BTreeMap<String, Tier>,
    /// Requested model name → tier name, or `"auto"` for the prompt rules.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Tenant name → tier, for requests to an alias (operator policy beats the client's choice).
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// A request header whose value (a tier or alias name) picks the tier of an alias request.
    #[serde(default)]
    pub hint_header: Option<String>,
    /// Tier for `/v1/images/generations`, whatever model is asked for.
    #[serde(default)]
    pub images: Option<String>,
    /// Where `auto` sends prompts that look easy.
    #[serde(default = "default_easy")]
    pub easy_tier: String,
    /// Where `auto` sends prompts that look hard.
    #[serde(default = "default_hard")]
    pub hard_tier: String,
    /// Approximate prompt tokens (bytes / 4) from which a prompt is hard; 0 turns the rule off.
    #[serde(default = "default_hard_min_tokens")]
    pub hard_min_tokens: usize,
    /// Fenced code blocks in the prompt from which it is hard; 0 turns the rule off.
    #[serde(default = "default_code_blocks_hard")]
    pub code_blocks_hard: usize,
    /// Non-system messages in the conversation from which it is hard; 0 turns the rule off.
    #[serde(default = "default_depth_hard")]
    pub depth_hard: usize,
    /// Whole words or phrases (any case) in user messages that mark hard reasoning.
    #[serde(default = "default_hard_keywords")]
    pub hard_keywords: Vec<String>,
    /// `"local-only"`: requests carrying a residency tag never reach a hosted upstream.
    #[serde(default)]
    pub residency: Residency,
    /// Tags (set by earlier plugins) whose presence means the request holds restricted data.
    #[serde(default = "default_residency_tags")]
    pub residency_tags: Vec<String>,
    /// The tier that keeps data on premises; used with no fallbacks when residency applies.
    #[serde(default = "default_easy")]
    pub residency_tier: String,
    /// Route every request (but image generation) to `budget_tier` once the tenant's remaining
    /// budget today is below this many USD, or spent; none: off. Needs a host of contract 0.1.1.
    #[serde(default)]
    pub local_when_budget_below_usd: Option<f64>,
    /// The free tier for a low budget; used with no fallbacks and no cascade (both may cost).
    #[serde(default = "default_easy")]
    pub budget_tier: String,
    /// Judge answers of `cascade_from` and escalate bad ones to `cascade_to`.
    #[serde(default)]
    pub cascade: bool,
    /// The cheap tier whose answers are judged.
    #[serde(default = "default_easy")]
    pub cascade_from: String,
    /// The tier a bad answer escalates to (its upstream and model).
    #[serde(default = "default_hard")]
    pub cascade_to: String,
    /// Characters of a stream held back and judged before the client sees any.
    #[serde(default = "default_hold_chars")]
    pub cascade_hold_chars: usize,
    /// An answer (trimmed) shorter than this many characters is escalated.
    #[serde(default = "default_min_chars")]
    pub cascade_min_chars: usize,
    /// An answer whose opening contains one of these (any case) is a refusal.
    #[serde(default = "default_refusals")]
    pub refusal_phrases: Vec<String>,
    /// Escalate answers that are not JSON when the request asked for `response_format` JSON.
    #[serde(default = "default_true")]
    pub cascade_check_json: bool,
}

/// What the router does when a residency tag is present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residency {
    /// Tags do not change the route.
    #[default]
    Any,
    /// Route to `residency_tier` with no fallbacks and no cascade.
    LocalOnly,
}

fn default_easy() -> String {
    "local".into()
}
fn default_hard() -> String {
    "hosted".into()
}
fn default_hard_min_tokens() -> usize {
    2000
}
fn default_code_blocks_hard() -> usize {
    2
}
fn default_depth_hard() -> usize {
    12
}
fn default_hard_keywords() -> Vec<String> {
    ["step by step", "prove", "proof", "derive", "reason carefully"].map(String::from).to_vec()
}
fn default_residency_tags() -> Vec<String> {
    vec!["pii".into()]
}
fn default_hold_chars() -> usize {
    200
}
fn default_min_chars() -> usize {
    1
}
fn default_refusals() -> Vec<String> {
    [
        "i'm sorry, but i can't",
        "i'm sorry, i can't",
        "i cannot help with",
        "i can't help with",
        "i can't assist with",
        "i cannot assist with",
        "i'm unable to help",
        "i am unable to help",
        "as an ai language model",
    ]
    .map(String::from)
    .to_vec()
}
fn default_true() -> bool {
    true
}

impl RouterConfig {
    /// Parses the JSON config and checks that every name it uses is a tier.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let mut config: Self =
            serde_json::from_str(json).map_err(|e| format!("invalid tier-router config: {e}"))?;
        config.validate()?;
        if let Some(h) = &mut config.hint_header {
            h.make_ascii_lowercase();
        }
        for list in [&mut config.hard_keywords, &mut config.refusal_phrases] {
            for phrase in list.iter_mut() {
                *phrase = crate::features::normalize(phrase);
            }
        }
        Ok(config)
    }

    /// Every reference to a tier must name one; every problem is listed.
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut need = |what: String, tier: &str| {
            if !self.tiers.contains_key(tier) {
                problems.push(format!("{what}: unknown tier {tier:?}"));
            }
        };
        for (alias, tier) in &self.aliases {
            if tier != AUTO {
                need(format!("aliases.{alias}"), tier);
            }
        }
        for (tenant, tier) in &self.tenants {
            need(format!("tenants.{tenant}"), tier);
        }
        if let Some(tier) = &self.images {
            need("images".into(), tier);
        }
        let uses_auto = self.aliases.values().any(|t| t == AUTO);
        if uses_auto {
            need("easy_tier".into(), &self.easy_tier);
            need("hard_tier".into(), &self.hard_tier);
        }
        if self.residency == Residency::LocalOnly {
            need("residency_tier".into(), &self.residency_tier);
        }
        if self.local_when_budget_below_usd.is_some() {
            need("budget_tier".into(), &self.budget_tier);
        }
        if self.cascade {
            need("cascade_from".into(), &self.cascade_from);
            need("cascade_to".into(), &self.cascade_to);
        }
        if let Some(usd) = self.local_when_budget_below_usd
            && !(usd.is_finite() && usd >= 0.0)
        {
            problems.push(format!("local_when_budget_below_usd: {usd} is not a USD amount >= 0"));
        }
        if self.tiers.contains_key(AUTO) {
            problems.push("tiers: \"auto\" is reserved for the rules".into());
        }
        for (name, tier) in &self.tiers {
            if tier.upstream.is_empty() {
                problems.push(format!("tiers.{name}.upstream: empty"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}
