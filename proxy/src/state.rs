//! What every request handler shares: limits, upstreams, routes and metrics, built once at start.

use std::sync::Arc;
use std::time::Duration;

use crate::access_log::{AccessLog, Destination};
use crate::auth::Tenants;
use crate::body::{BodyBudget, ResponseLimits};
use crate::cache::{ResponseCache, SharedCache};
use crate::config::Config;
use crate::env::EnvSource;
use crate::metrics::Metrics;
use crate::plugin::{PluginEngine, PluginRegistry};
use crate::telemetry::Telemetry;
use crate::upstream::{Upstream, UpstreamBuildError, Upstreams};

/// Shared, immutable-after-start state of a running proxy.
#[derive(Debug)]
pub struct State {
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// Limit for receiving a request body.
    pub body_read_timeout: Duration,
    /// Request-body bytes buffered at once, all requests together.
    pub body_budget: BodyBudget,
    /// What an upstream's answer may take (event size, whole-body size).
    pub response_limits: ResponseLimits,
    /// All upstreams by name.
    pub upstreams: Upstreams,
    /// The default chain for text endpoints: `routing.default` then `routing.fallbacks`.
    pub text_chain: Vec<Arc<Upstream>>,
    /// The chain for image endpoints: `routing.images` (or `routing.default`) alone, since text
    /// fallbacks usually cannot draw.
    pub image_chain: Vec<Arc<Upstream>>,
    /// The plugin chain, hot-swappable; `None` when no `[plugins]` section is configured.
    pub plugins: Option<Arc<PluginRegistry>>,
    /// Request headers shown to plugins (`plugins.headers`).
    pub plugin_headers: Vec<http::HeaderName>,
    /// Virtual API keys → tenants.
    pub tenants: Tenants,
    /// Answers that plugins marked cacheable.
    pub cache: Arc<ResponseCache>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Bearer token for `/admin/*`, when configured.
    pub admin_token: Option<String>,
    /// Where each request's line goes, when `[log] access` is set.
    pub access_log: Option<AccessLog>,
    /// Traces, when `[telemetry]` is set.
    pub telemetry: Option<Telemetry>,
    /// Each request's log lines carry its ids (`[log] format = "json"`).
    pub log_ids: bool,
    /// Per-tenant usage, limits and budgets (`[state]`, `[[tenant]]` limits, `[[price]]`).
    pub ledger: crate::ledger::Ledger,
}

/// Why the shared state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Upstream(#[from] UpstreamBuildError),
    #[error("plugins: {0}")]
    Plugins(String),
    #[error(transparent)]
    Tenants(#[from] crate::auth::DuplicateKey),
    #[error("log.access: {0}")]
    AccessLog(std::io::Error),
    #[error("telemetry: {0}")]
    Telemetry(String),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl State {
    /// Builds the state from a validated config, reading secrets from `env`, and loads the plugin
    /// chain (compiled and probed) before the proxy accepts its first request.
    pub async fn build(config: &Config, env: &dyn EnvSource) -> Result<Self, StateError> {
        let upstreams = Upstreams::build(config, env)?;
        let mut metrics = Metrics::default();
        // Before the plugins compile: a missing Redis URL fails the start at once.
        let ledger = crate::ledger::Ledger::build(config, env, metrics.ledger.clone())?;
        let chain = |names: &mut dyn Iterator<Item = &String>| -> Vec<Arc<Upstream>> {
            names.filter_map(|name| upstreams.get(name).cloned()).collect()
        };
        let routing = &config.routing;
        let text_chain = chain(&mut std::iter::once(&routing.default).chain(&routing.fallbacks));
        let images = routing.images.as_ref().unwrap_or(&routing.default);
        let image_chain = chain(&mut std::iter::once(images));
        let plugins = match &config.plugins {
            None => None,
            Some(section) => {
                let engine =
                    PluginEngine::new(section.engine_limits()).map_err(StateError::Plugins)?;
                let names = upstreams.iter().map(|u| u.name.clone()).collect();
                let registry = PluginRegistry::new(
                    engine,
                    section.clone(),
                    config.plugin_chain.clone(),
                    names,
                );
                let report =
                    registry.reload().await.map_err(|e| StateError::Plugins(e.to_string()))?;
                tracing::info!(plugins = ?report.compiled, took_ms = report.took_ms, "plugins loaded");
                Some(Arc::new(registry))
            }
        };
        let plugin_headers = config
            .plugins
            .iter()
            .flat_map(|section| &section.headers)
            .filter_map(|name| http::HeaderName::try_from(name.as_str()).ok())
            .collect();
        let mut cache = ResponseCache::new(&config.cache);
        // Validation refuses `shared` without the Redis store.
        if let (true, Some(redis)) = (config.cache.shared, ledger.redis_store()) {
            let max =
                usize::try_from(config.cache.shared_max_entry_kib * 1024).unwrap_or(usize::MAX);
            cache = cache.with_shared(SharedCache::new(redis, config.cache.shared_timeout(), max));
        }
        let cache = Arc::new(cache);
        if let Some(registry) = &plugins {
            metrics.register_plugins(Arc::clone(registry));
        }
        metrics.register_cache(Arc::clone(&cache));
        let access_log = match &config.log.access {
            None => None,
            Some(to) => {
                Some(AccessLog::open(&Destination::parse(to)).map_err(StateError::AccessLog)?)
            }
        };
        if let Some(log) = &access_log {
            metrics.register_access_log(log.dropped.clone());
        }
        let telemetry = match &config.telemetry {
            None => None,
            Some(section) => Some(Telemetry::start(section).map_err(StateError::Telemetry)?),
        };
        if let Some(telemetry) = &telemetry {
            metrics.register_trace_export(&telemetry.exporter.counters);
        }
        Ok(Self {
            ledger,
            plugins,
            plugin_headers,
            max_body_bytes: config.server.max_body_bytes,
            body_read_timeout: config.server.body_read_timeout(),
            body_budget: BodyBudget::new(config.server.max_buffered_body_bytes),
            response_limits: ResponseLimits {
                max_event_bytes: config.server.max_sse_event_bytes,
                max_body_bytes: config.server.max_response_bytes,
            },
            text_chain,
            image_chain,
            upstreams,
            tenants: Tenants::build(config, env)?,
            cache,
            metrics,
            admin_token: config.admin.token_env.as_deref().and_then(|var| env.secret(var)),
            access_log,
            telemetry,
            log_ids: config.log.format == crate::config::LogFormat::Json,
        })
    }
}
