//! The request phase over the whole chain: each plugin in config order gets a fresh instance and
//! the request with earlier edits applied; its decision is validated and merged, and every failure
//! is answered by that plugin's policy. The result is one [`RequestOutcome`] for the pipeline.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::instrument;

use super::bindings::{
    CacheDirective, Changes, Decision, LimitsSnapshot, LlmRequest, Reply, Route,
};
use super::config::FailurePolicy;
use super::error::PluginFailure;
use super::instance::LoadedPlugin;
use super::response::ResponseWatch;
use super::validate;

/// What the pipeline does with the request after the plugin chain.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Forward the request, with these changes.
    Proceed(Box<Proceed>),
    /// A plugin answered: send `reply` (shape an `Error` as OpenAI error JSON, a `Completion` as a
    /// chat completion, JSON or SSE per the request's stream flag); forward nothing.
    Respond {
        plugin: Arc<str>,
        reply: Reply,
        /// Fail-open plugins that failed before the answer.
        skipped: Vec<PluginFailure>,
    },
    /// A fail-closed plugin failed: refuse with `failure.http_status()` and an OpenAI-shaped error
    /// carrying `failure.public_message()`. Forward nothing.
    Refuse(PluginFailure),
}

/// The merged changes of the whole chain.
#[derive(Debug)]
pub struct Proceed {
    /// The request after every plugin's edits; `tags` holds every plugin's tags.
    pub request: LlmRequest,
    /// `edited[i]`: message `i` was changed, so rebuild its text in the upstream body. Untouched
    /// messages can pass through byte for byte.
    pub edited: Vec<bool>,
    /// Each plugin's edits, in chain order, as that plugin addressed them (against the texts
    /// after the earlier plugins' edits): lets the pipeline split an edited text back into parts.
    pub edit_log: Vec<Vec<super::bindings::TextEdit>>,
    /// The last route set by any plugin; `None` keeps the default route.
    pub route: Option<Route>,
    pub cache: CachePolicy,
    /// Headers to add to the upstream request, in chain order.
    pub add_headers: Vec<(String, String)>,
    /// Fail-open plugins that failed; their decisions were skipped.
    pub skipped: Vec<PluginFailure>,
    /// Instances that asked to see the response (empty for most requests).
    pub watch: ResponseWatch,
}

/// The chain's merged cache directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePolicy {
    /// No plugin said anything: the proxy's default cache behaviour.
    Default,
    /// Some plugin said no-cache; this wins over any `Store`.
    NoCache,
    /// Cache under `key` for `ttl` (the last plugin that set it wins).
    Store { key: String, ttl: Duration },
}

/// The whole chain, compiled: one immutable generation. The registry swaps whole sets, so a
/// request runs start to end on the set it started with.
#[derive(Debug)]
pub struct PluginSet {
    pub(crate) plugins: Vec<Arc<LoadedPlugin>>,
    pub(crate) upstreams: Arc<BTreeSet<String>>,
    /// Increases by one with every swap.
    pub generation: u64,
}

impl PluginSet {
    /// An empty chain: every request proceeds unchanged.
    pub fn empty(upstreams: BTreeSet<String>) -> Self {
        Self { plugins: Vec::new(), upstreams: Arc::new(upstreams), generation: 0 }
    }

    /// Names of the plugins, in chain order.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.plugins.iter().map(|p| Arc::clone(&p.name)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Whether a plugin of the chain imports `tenant-limits`: only then does the request path
    /// read the tenant's windows before the chain runs.
    pub fn reads_tenant_limits(&self) -> bool {
        self.plugins.iter().any(|p| p.reads_limits)
    }

    /// Run the request phase of the chain. Each call instantiates, inits and runs one plugin at a
    /// time on the calling thread (tens of µs; a runaway plugin at most its deadline).
    pub async fn on_request(&self, request: LlmRequest) -> RequestOutcome {
        self.on_request_noted(request, None, None).await
    }

    /// [`Self::on_request`], with `limits` for plugins that call `tenant-limits`, noting each
    /// call (and, through the watch, each response-phase call) on the request's `trail` for its
    /// trace.
    pub async fn on_request_noted(
        &self,
        request: LlmRequest,
        limits: Option<&LimitsSnapshot>,
        trail: Option<&Arc<crate::trail::Trail>>,
    ) -> RequestOutcome {
        let mut acc = Proceed {
            edited: vec![false; request.messages.len()],
            edit_log: Vec::new(),
            request,
            route: None,
            cache: CachePolicy::Default,
            add_headers: Vec::new(),
            skipped: Vec::new(),
            watch: ResponseWatch::new(Arc::clone(&self.upstreams)),
        };
        if let Some(trail) = trail {
            acc.watch.note_to(Arc::clone(trail));
        }
        for plugin in &self.plugins {
            let started = Instant::now();
            let result = run_one(plugin, &acc.request, limits, &self.upstreams).await;
            if let Some(trail) = trail {
                let (decision, failure) = match &result {
                    Ok((Decision::Proceed(_), _)) => ("proceed", None),
                    Ok((Decision::Respond(_), _)) => ("respond", None),
                    Err(failure) => ("failed", Some(failure.kind.label())),
                };
                let (name, sha) = (&plugin.name, &plugin.sha256);
                let took = started.elapsed();
                trail.plugin_call(name, sha, "request", decision, failure, started, took);
            }
            match result {
                Ok((Decision::Proceed(changes), live)) => {
                    // `live` is only returned when the decision watches the response.
                    if let Some(live) = live {
                        acc.watch.push(live);
                    }
                    merge(&mut acc, changes);
                }
                Ok((Decision::Respond(reply), _)) => {
                    return RequestOutcome::Respond {
                        plugin: Arc::clone(&plugin.name),
                        reply,
                        skipped: acc.skipped,
                    };
                }
                Err(failure) if failure.policy == FailurePolicy::Closed => {
                    return RequestOutcome::Refuse(failure);
                }
                Err(failure) => acc.skipped.push(failure),
            }
        }
        RequestOutcome::Proceed(Box::new(acc))
    }
}

/// One plugin's request phase. Returns the validated decision, and the instance when the decision
/// asks to watch the response (otherwise the instance is dropped here, with all its memory).
#[instrument(level = "debug", skip_all, fields(plugin = %plugin.name))]
pub(crate) async fn run_one(
    plugin: &Arc<LoadedPlugin>,
    request: &LlmRequest,
    limits: Option<&LimitsSnapshot>,
    upstreams: &BTreeSet<String>,
) -> Result<(Decision, Option<super::instance::LiveInstance>), PluginFailure> {
    let waited = Instant::now();
    let mut live = plugin.start().await.map_err(|k| plugin.failure(k))?;
    let result = live.on_request(request, limits).await;
    plugin.stats.record_call(live.started.elapsed());
    tracing::trace!(queue_us = (live.started - waited).as_micros() as u64, "plugin call done");
    let decision = result
        .map_err(|k| plugin.failure(k))?
        .map_err(|e| plugin.failure(super::FailureKind::PluginError(e)))?;
    let texts: Vec<&str> = request.messages.iter().map(|m| m.content.as_str()).collect();
    validate::decision(&decision, &texts, upstreams)
        .map_err(|e| plugin.failure(super::FailureKind::InvalidDecision(e)))?;
    let watches = matches!(&decision, Decision::Proceed(c) if c.watch_response);
    if watches {
        return Ok((decision, Some(live)));
    }
    plugin.recycle(live);
    Ok((decision, None))
}

fn merge(acc: &mut Proceed, c: Changes) {
    if c.route.is_some() {
        acc.route = c.route;
    }
    if !c.edits.is_empty() {
        let mut texts: Vec<String> =
            acc.request.messages.iter_mut().map(|m| std::mem::take(&mut m.content)).collect();
        validate::apply_edits(&mut texts, &c.edits, &mut acc.edited);
        for (m, t) in acc.request.messages.iter_mut().zip(texts) {
            m.content = t;
        }
        acc.edit_log.push(c.edits);
    }
    match c.cache {
        Some(CacheDirective::NoCache) => acc.cache = CachePolicy::NoCache,
        Some(CacheDirective::Store(e)) if acc.cache != CachePolicy::NoCache => {
            acc.cache =
                CachePolicy::Store { key: e.key, ttl: Duration::from_secs(e.ttl_seconds.into()) }
        }
        _ => {}
    }
    acc.add_headers.extend(c.add_headers);
    for (k, v) in c.tags {
        match acc.request.tags.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => acc.request.tags.push((k, v)),
        }
    }
}
