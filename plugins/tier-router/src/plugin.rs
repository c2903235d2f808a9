//! The glue between the host's hooks and the pure logic: turns a routing decision into a route
//! and tags, arms the cascade, and answers response hooks. The only module that calls the host.

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Delta, Escalation, EventAction, Plugin, Request, Response,
    ResponseAction, StreamEvent, TOOL_CALL_CHOICE, counter_add, is_probe, tenant_limits,
};

use crate::cascade::{Judge, Step, StreamState};
use crate::config::RouterConfig;
use crate::route::{self, Reason, Routed};

/// Most fallbacks the host accepts in one route (`limits::decision::MAX_FALLBACKS`).
const MAX_FALLBACKS: usize = 8;

/// One request's router: its config, and the cascade when it watches the answer.
#[derive(Default)]
pub struct TierRouter {
    config: Option<RouterConfig>,
    cascade: Option<Cascade>,
}

/// A cascade armed for one request.
struct Cascade {
    judge: Judge,
    /// Only answers from this upstream are judged (a fallback's answer is not the cheap tier's).
    from_upstream: String,
    to: Escalation,
    stream: StreamState,
    /// Escalation is honoured once per request; the better tier's answer is not judged.
    escalated: bool,
}

impl Plugin for TierRouter {
    fn init(&mut self, config: Config) -> Result<(), String> {
        self.config = Some(RouterConfig::from_json(config.as_str())?);
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let config = self.config.as_ref().ok_or("tier-router: no config")?;
        if is_probe(&req) {
            return Ok(Decision::Proceed(probe_changes(config)));
        }
        // Ask the host only when the budget rule is on (contract 0.1.1).
        let budget = match config.local_when_budget_below_usd {
            Some(_) => tenant_limits().and_then(|l| l.remaining_budget_usd()),
            None => None,
        };
        let (changes, cascade) = changes_for(config, &req, budget)?;
        self.cascade = cascade;
        for (key, value) in &changes.tags {
            match key.as_str() {
                "route.tier" => counter_add(&format!("tier.{value}"), 1),
                "route.reason" => counter_add(&format!("reason.{value}"), 1),
                _ => {}
            }
        }
        Ok(Decision::Proceed(changes))
    }

    fn on_response(&mut self, resp: Response) -> ResponseAction {
        let Some(cascade) = self.cascade.as_mut().filter(|c| !c.escalated) else {
            return ResponseAction::Pass;
        };
        if resp.upstream != cascade.from_upstream {
            return ResponseAction::Pass;
        }
        // Entries past the choices (tool-call arguments) name their field in the finish-reason
        // slot; only the answers themselves are judged.
        let verdict = resp.choices.iter().enumerate().find_map(|(i, text)| {
            let finish = resp.finish_reasons.get(i).cloned().flatten();
            if finish.as_deref().is_some_and(|f| f.starts_with("field:")) {
                return None;
            }
            cascade.judge.whole(text, finish.as_deref())
        });
        match verdict {
            Some(reason) => ResponseAction::Escalate(cascade.escalate(reason)),
            None => ResponseAction::Pass,
        }
    }

    fn on_event(&mut self, ev: StreamEvent) -> EventAction {
        let Some(cascade) = self.cascade.as_mut().filter(|c| !c.escalated) else {
            return EventAction::Pass;
        };
        // Tool-call argument fragments (the host's tool-call choices) are not the answer's text.
        if ev.choice & TOOL_CALL_CHOICE != 0 {
            return EventAction::Pass;
        }
        let step = cascade.stream.on_event(
            &cascade.judge,
            ev.seq,
            ev.committed,
            &ev.text,
            ev.finish_reason.as_deref(),
        );
        match step {
            Step::Pass => EventAction::Pass,
            Step::Hold => EventAction::Hold,
            Step::Release(text) => EventAction::Replace(vec![Delta::new(ev.choice, &text)]),
            Step::Escalate(reason) => EventAction::Escalate(cascade.escalate(reason)),
        }
    }

    fn on_stream_end(&mut self) -> Vec<Delta> {
        let held = self.cascade.as_mut().and_then(|c| c.stream.on_end());
        held.map(|text| vec![Delta::new(0, &text)]).unwrap_or_default()
    }
}

impl Cascade {
    fn escalate(&mut self, reason: &str) -> Escalation {
        self.escalated = true;
        counter_add(&format!("cascade.{reason}"), 1);
        Escalation { reason: format!("tier-router cascade: {reason}"), ..self.to.clone() }
    }
}

/// The route and tags for `req` (whose tenant has `budget` USD left today, when known), and the
/// cascade when it applies.
fn changes_for(
    config: &RouterConfig,
    req: &Request,
    budget: Option<f64>,
) -> Result<(Changes, Option<Cascade>), String> {
    let Some(routed) = route::decide(config, req, budget) else {
        return Ok((Changes::new().tag("route.reason", "passthrough"), None));
    };
    let tier = config.tiers.get(&routed.tier).ok_or("tier-router: unknown tier")?;
    let mut changes = Changes::new()
        .route(&tier.upstream, tier.model.as_deref())
        .tag("route.tier", &routed.tier)
        .tag("route.reason", routed.reason.label());
    // Residency and budget: no fallbacks at all, since a fallback may be hosted (and, for the
    // budget, would make admission reserve its price).
    if !matches!(routed.reason, Reason::Residency | Reason::Budget) {
        for fallback in tier.fallbacks.iter().take(MAX_FALLBACKS) {
            changes = changes.fallback(fallback);
        }
    }
    let cascade = cascade_for(config, req, &routed);
    if cascade.is_some() {
        changes = changes.watch_response().tag("route.cascade", &config.cascade_to);
    }
    Ok((changes, cascade))
}

/// The cascade for this request, when it applies: cascading on, routed to `cascade_from` by a rule
/// other than residency, a chat or completions request with one choice.
fn cascade_for(config: &RouterConfig, req: &Request, routed: &Routed) -> Option<Cascade> {
    let text_endpoint = matches!(req.endpoint.as_str(), "/v1/chat/completions" | "/v1/completions");
    if !config.cascade
        || routed.tier != config.cascade_from
        || matches!(routed.reason, Reason::Residency | Reason::Budget)
        || !text_endpoint
    {
        return None;
    }
    let params: serde_json::Value = serde_json::from_str(&req.params_json).unwrap_or_default();
    if params["n"].as_u64().is_some_and(|n| n > 1) {
        return None;
    }
    let from = config.tiers.get(&config.cascade_from)?;
    let to = config.tiers.get(&config.cascade_to)?;
    Some(Cascade {
        judge: Judge::new(config, &params),
        from_upstream: from.upstream.clone(),
        to: Escalation {
            upstream: to.upstream.clone(),
            model: to.model.clone(),
            reason: String::new(),
        },
        stream: StreamState::default(),
        escalated: false,
    })
}

/// On the load-time probe, name every upstream the config uses (as route + fallbacks), so the host
/// refuses a config with an unknown upstream before it goes live.
fn probe_changes(config: &RouterConfig) -> Changes {
    let mut names: Vec<&str> = Vec::new();
    for tier in config.tiers.values() {
        for name in std::iter::once(&tier.upstream).chain(&tier.fallbacks) {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let Some((first, rest)) = names.split_first() else { return Changes::new() };
    let mut changes = Changes::new().route(first, None).tag("route.reason", "probe");
    for name in rest.iter().take(MAX_FALLBACKS) {
        changes = changes.fallback(name);
    }
    changes
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
