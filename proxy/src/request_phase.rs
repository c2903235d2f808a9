//! The plugin chain's request phase as the pipeline sees it: the parsed request handed to the
//! chain as typed data, the chain's text edits written back into the typed body, and a plugin's
//! early answer turned into an HTTP response. (The response phase is [`crate::respond`].)

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Response};
use serde_json::Value;

use crate::body::Body;
use crate::error::ProxyError;
use crate::ledger::headers::RateState;
use crate::ledger::window;
use crate::plugin::{
    CachePolicy, LimitsSnapshot, LlmRequest, PluginSet, RequestOutcome, ResponseWatch, Route,
};
use crate::request::{ParsedRequest, RequestBody};
use crate::texts::{self, Layout};

/// What the chain decided for a request that goes on to an upstream.
#[derive(Debug, Default)]
pub struct Forward {
    /// Overrides the default chain when set.
    pub route: Option<Route>,
    /// Added to the upstream request.
    pub add_headers: Vec<(HeaderName, HeaderValue)>,
    /// The merged cache directive (acted on by the response cache).
    pub cache: Option<CachePolicy>,
    /// Tags from every plugin, for logs and metrics.
    pub tags: Vec<(String, String)>,
    /// Plugins that watch the response; empty for most requests.
    pub watch: ResponseWatch,
}

/// The request phase's result.
pub enum RequestPhase {
    /// Send the (possibly edited) request upstream.
    Forward(Box<Forward>),
    /// A plugin answered itself; nothing is forwarded. Carries the plugin's name.
    Respond(Response<Body>, Arc<str>),
}

/// Runs the chain over `request`, writing its edits back into it. `limits` answers the plugins'
/// `tenant-limits` calls.
pub async fn on_request(
    set: &PluginSet,
    request: &mut ParsedRequest,
    tenant: Option<&str>,
    headers: Vec<(String, String)>,
    limits: Option<&LimitsSnapshot>,
    trail: Option<&Arc<crate::trail::Trail>>,
) -> Result<RequestPhase, ProxyError> {
    if set.is_empty() {
        return Ok(RequestPhase::Forward(Box::default()));
    }
    let (shown, mut layout) = to_plugin_request(request, tenant, headers);
    let outcome = set.on_request_noted(shown, limits, trail).await;
    match outcome {
        RequestOutcome::Refuse(failure) => Err(ProxyError::PluginRefused {
            status: failure.http_status(),
            message: failure.public_message(),
        }),
        RequestOutcome::Respond { plugin, reply, .. } => Ok(RequestPhase::Respond(
            crate::wire::reply_response(reply, request.stream(), request.model()),
            plugin,
        )),
        RequestOutcome::Proceed(proceed) => {
            let proceed = *proceed;
            for edits in &proceed.edit_log {
                layout.follow(edits);
            }
            let messages = &proceed.request.messages;
            match texts::write_back(&mut request.body, &layout, messages, &proceed.edited) {
                Ok(edited) => request.edited |= edited,
                // Never forward a text that a plugin meant to change but could not.
                Err(why) => {
                    tracing::warn!(%why, "a plugin edit cannot be applied; request refused");
                    return Err(ProxyError::PluginRefused {
                        status: 500,
                        message: format!("a plugin edit cannot be applied: {why}"),
                    });
                }
            }
            let add_headers = proceed
                .add_headers
                .into_iter()
                .filter_map(|(name, value)| {
                    Some((HeaderName::try_from(name).ok()?, HeaderValue::try_from(value).ok()?))
                })
                .collect();
            Ok(RequestPhase::Forward(Box::new(Forward {
                route: proceed.route,
                add_headers,
                cache: Some(proceed.cache),
                tags: proceed.request.tags,
                watch: proceed.watch,
            })))
        }
    }
}

/// The typed request as plugins see it: one `message` per text that leaves the proxy (see
/// [`texts`]), every other parameter in `params-json`.
fn to_plugin_request(
    request: &ParsedRequest,
    tenant: Option<&str>,
    headers: Vec<(String, String)>,
) -> (LlmRequest, Layout) {
    let (messages, layout) = texts::entries(&request.body);
    let params = match &request.body {
        RequestBody::Chat(chat) => Ok(Value::Object(chat_params(chat))),
        RequestBody::Completion(c) => {
            let mut params = c.clone();
            params.prompt = Value::Null;
            serde_json::to_value(params)
        }
        RequestBody::Embedding(e) => {
            let mut params = e.clone();
            params.input = Value::Null;
            serde_json::to_value(params)
        }
        RequestBody::Image(i) => {
            let mut params = i.clone();
            params.prompt.clear();
            serde_json::to_value(params)
        }
    };
    let params_json = match params {
        Ok(Value::Object(mut map)) => {
            // The endpoint's own text fields travel as `messages`; leave no placeholder behind.
            for key in ["messages", "prompt", "input", "model", "stream"] {
                map.remove(key);
            }
            Value::Object(map).to_string()
        }
        _ => "{}".to_string(),
    };
    let request = LlmRequest {
        endpoint: request.endpoint.path().to_string(),
        model: request.model().map(str::to_string),
        stream: request.stream(),
        messages,
        params_json,
        tenant: tenant.map(str::to_string),
        headers,
        tags: Vec::new(),
    };
    (request, layout)
}

/// A tenant's limits and windows as plugins see them (`host.tenant-limits`, WIT 0.1.1).
pub fn limits_snapshot(tenant: &str, rate: &RateState) -> LimitsSnapshot {
    let (limits, windows) = (&rate.limits, &rate.windows);
    let left = |limit: Option<u64>, used: u64| limit.map(|n| n.saturating_sub(used));
    LimitsSnapshot {
        tenant: tenant.to_string(),
        requests_per_minute: limits.requests_per_minute,
        tokens_per_minute: limits.tokens_per_minute,
        max_concurrent: limits.max_concurrent,
        budget_micro_usd_per_day: limits.budget_micros_per_day,
        remaining_requests: left(limits.requests_per_minute, windows.requests),
        remaining_tokens: left(limits.tokens_per_minute, windows.tokens),
        remaining_concurrent: left(limits.max_concurrent, windows.concurrent),
        remaining_budget_micro_usd: left(limits.budget_micros_per_day, windows.cost_micros),
        spent_micro_usd_today: windows.cost_micros,
        minute_resets_in_ms: window::minute_reset_ms(windows.now_ms),
        day_resets_in_ms: window::day_reset_ms(windows.now_ms),
    }
}

/// A chat request's parameters (everything but model, stream and messages) as JSON, built
/// field by field: cloning the request to serialise it would copy every message too.
fn chat_params(chat: &crate::request::ChatRequest) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::with_capacity(chat.extra.len() + 6);
    let numbers = [
        ("temperature", chat.temperature.map(Value::from)),
        ("top_p", chat.top_p.map(Value::from)),
        ("n", chat.n.map(Value::from)),
        ("max_tokens", chat.max_tokens.map(Value::from)),
        ("seed", chat.seed.map(Value::from)),
    ];
    for (key, value) in numbers {
        if let Some(value) = value {
            map.insert(key.to_string(), value);
        }
    }
    if let Some(stop) = chat.stop.as_ref().and_then(|s| serde_json::to_value(s).ok()) {
        map.insert("stop".to_string(), stop);
    }
    // Unknown fields are raw JSON in the request; plugins get them parsed.
    map.extend(
        chat.extra.iter().filter_map(|(k, v)| {
            Some((k.to_string(), serde_json::from_str::<Value>(v.get()).ok()?))
        }),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;
    use bytes::Bytes;
    use serde_json::json;

    #[test]
    fn plugins_get_every_parameter_but_the_text_fields() {
        let raw = r#"{"model":"m","stream":true,"temperature":0,"seed":7,"stop":["x"],
            "tools":[{"type":"function"}],"messages":[{"role":"user","content":"hi"}]}"#;
        let request = ParsedRequest::parse(Endpoint::ChatCompletions, Bytes::from(raw)).unwrap();
        let (plugin, _) = to_plugin_request(&request, None, Vec::new());
        let params: Value = serde_json::from_str(&plugin.params_json).unwrap();
        assert_eq!(
            params,
            json!({"temperature": 0.0, "seed": 7, "stop": ["x"], "tools": [{"type": "function"}]})
        );
        assert_eq!(plugin.messages.len(), 1);
        assert_eq!(plugin.model.as_deref(), Some("m"));
        assert!(plugin.stream);
    }
}
