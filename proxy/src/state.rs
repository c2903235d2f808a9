//! What every request handler shares: limits, upstreams, routes and metrics, built once at start.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Tenants;
use crate::config::Config;
use crate::env::EnvSource;
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamBuildError, Upstreams};

/// Shared, immutable-after-start state of a running proxy.
#[derive(Debug)]
pub struct State {
    /// Largest accepted request body.
    pub max_body_bytes: u64,
    /// Limit for receiving a request body.
    pub body_read_timeout: Duration,
    /// All upstreams by name.
    pub upstreams: Upstreams,
    /// The default chain for text endpoints: `routing.default` then `routing.fallbacks`.
    pub text_chain: Vec<Arc<Upstream>>,
    /// The chain for image endpoints: `routing.images` (or `routing.default`) alone, since text
    /// fallbacks usually cannot draw.
    pub image_chain: Vec<Arc<Upstream>>,
    /// Virtual API keys → tenants.
    pub tenants: Tenants,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Bearer token for `/admin/*`, when configured.
    pub admin_token: Option<String>,
}

impl State {
    /// Builds the state from a validated config, reading secrets from `env`.
    pub fn build(config: &Config, env: &dyn EnvSource) -> Result<Self, UpstreamBuildError> {
        let upstreams = Upstreams::build(config, env)?;
        let chain = |names: &mut dyn Iterator<Item = &String>| -> Vec<Arc<Upstream>> {
            names.filter_map(|name| upstreams.get(name).cloned()).collect()
        };
        let routing = &config.routing;
        let text_chain = chain(&mut std::iter::once(&routing.default).chain(&routing.fallbacks));
        let images = routing.images.as_ref().unwrap_or(&routing.default);
        let image_chain = chain(&mut std::iter::once(images));
        Ok(Self {
            max_body_bytes: config.server.max_body_bytes,
            body_read_timeout: config.server.body_read_timeout(),
            text_chain,
            image_chain,
            upstreams,
            tenants: Tenants::build(config, env),
            metrics: Metrics::default(),
            admin_token: config.admin.token_env.as_deref().and_then(|var| env.get(var)),
        })
    }
}
