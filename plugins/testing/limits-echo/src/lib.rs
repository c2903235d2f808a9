//! Tags each request with what `tenant-limits` (contract 0.1.1) answered: `limits` = `none`, or
//! `limits.tenant`, `limits.budget` (micro-USD per day), `limits.budget_left` (micro-USD) and
//! `limits.requests_left`, so tests can see exactly what the host handed the plugin.

use switchyard_plugin_sdk::{Changes, Decision, Plugin, Request, export_plugin, tenant_limits};

#[derive(Default)]
struct LimitsEcho;

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "none".to_string(), |n| n.to_string())
}

impl Plugin for LimitsEcho {
    fn on_request(&mut self, _req: Request) -> Result<Decision, String> {
        let Some(l) = tenant_limits() else {
            return Ok(Decision::Proceed(Changes::new().tag("limits", "none")));
        };
        let changes = Changes::new()
            .tag("limits", "some")
            .tag("limits.tenant", &l.tenant)
            .tag("limits.budget", &opt(l.budget_micro_usd_per_day))
            .tag("limits.budget_left", &opt(l.remaining_budget_micro_usd))
            .tag("limits.requests_left", &opt(l.remaining_requests));
        Ok(Decision::Proceed(changes))
    }
}

export_plugin!(LimitsEcho);
