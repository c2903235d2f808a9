//! The limits step of the pipeline: a tenant's request reserves its worst case in the ledger
//! before any upstream is called (a cache hit counts against requests per minute only), every
//! answer to a limited tenant carries the `x-ratelimit-*` headers, and the reservation is settled
//! with the real usage once the response has ended, or released when no upstream answered.
//! How the ledger keeps its counters is [`crate::ledger`]'s; docs/limits.md says why.

use std::sync::Arc;

use http::HeaderMap;

use crate::error::ProxyError;
use crate::ledger::headers::RateState;
use crate::ledger::{Reservation, Usage, estimate};
use crate::request::ParsedRequest;
use crate::state::State;
use crate::upstream::Upstream;

/// What a request holds in the ledger.
#[derive(Debug, Default)]
pub struct Held {
    /// The tenant's windows as of admission, for the response headers.
    pub rate: Option<RateState>,
    /// The worst case reserved, until settled or released.
    pub reservation: Option<Reservation>,
}

fn limited(refusal: crate::ledger::Refusal) -> ProxyError {
    ProxyError::Limited(Box::new(refusal))
}

/// A cache hit: counts against the tenant's requests per minute, reserves nothing.
pub async fn cache_hit(
    state: &State,
    tenant: Option<&str>,
    held: &mut Held,
) -> Result<(), ProxyError> {
    let Some(tenant) = tenant else { return Ok(()) };
    held.rate = Some(state.ledger.admit_cache_hit(tenant).await.map_err(limited)?);
    Ok(())
}

/// Reserves what `request` may use on `chain` (its estimated prompt and `max_tokens`, at the
/// price of the dearest upstream it may reach), or refuses it over a limit.
pub async fn reserve(
    state: &State,
    tenant: Option<&str>,
    request: &ParsedRequest,
    chain: &[Arc<Upstream>],
    held: &mut Held,
) -> Result<(), ProxyError> {
    let Some(tenant) = tenant else { return Ok(()) };
    let (entries, _) = crate::texts::entries(&request.body);
    let prompt = estimate::prompt_tokens(&request.body, &entries);
    let targets: Vec<(&str, Option<&str>)> = chain
        .iter()
        .map(|u| (u.name.as_str(), u.model_override.as_deref().or(request.model())))
        .collect();
    let ask = state.ledger.ask(tenant, &targets, prompt, estimate::max_tokens(&request.body));
    let admission = state.ledger.admit(tenant, ask).await.map_err(limited)?;
    held.rate = Some(admission.rate);
    held.reservation = Some(admission.reservation);
    Ok(())
}

/// The tenant's `x-ratelimit-*` headers on an answer, when the tenant has limits.
pub fn headers(state: &State, tenant: Option<&str>, held: &Held, headers: &mut HeaderMap) {
    if let (Some(tenant), Some(rate)) = (tenant, &held.rate)
        && state.ledger.limits(tenant).any()
    {
        rate.apply_headers(headers);
    }
}

/// The end of a request: settles its reservation with `usage` (in the background: one store
/// call after the response), or releases it when no upstream answered. Requests without a
/// reservation (no tenants configured) still count in the token and cost metrics. Returns the
/// request's cost in USD.
pub fn settle(
    state: &State,
    tenant: Option<&str>,
    reservation: Option<Reservation>,
    upstream: &str,
    model: Option<&str>,
    usage: Usage,
) -> f64 {
    let usd = state.ledger.prices().cost_usd(upstream, model, &usage);
    let answered = upstream != "none";
    match reservation {
        Some(reservation) => {
            let (upstream, model) = (upstream.to_string(), model.map(str::to_string));
            let end = async move {
                if answered {
                    reservation.settle(&upstream, model.as_deref(), &usage).await;
                } else {
                    reservation.release().await;
                }
            };
            // Dropped outside a runtime, a reservation is charged as reserved (never less).
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(end);
            }
        }
        None if answered && usage != Usage::default() => {
            let metrics = &state.metrics.ledger;
            metrics.usage(tenant.unwrap_or(""), upstream, model.unwrap_or(""), &usage, usd);
        }
        None => {}
    }
    usd
}
