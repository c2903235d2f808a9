//! Upstreams: the OpenAI-compatible APIs requests are forwarded to, each with its own pooled
//! client, credentials and timeouts.

mod client;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::config::{Config, UpstreamConfig};
use crate::env::EnvSource;
use crate::request::Endpoint;

pub use client::{ClientError, HttpClient, connector};

/// One configured upstream, ready to send to.
pub struct Upstream {
    /// The configured name, used in headers, metrics and logs.
    pub name: String,
    /// `base_url` without a trailing slash; endpoint paths are appended.
    base_url: String,
    /// The full URL of each endpoint, parsed once (those that parse).
    uris: Vec<(Endpoint, Uri)>,
    /// `Bearer <key>`, marked sensitive so it never appears in debug output.
    authorization: Option<HeaderValue>,
    /// Why the upstream cannot be used, when it cannot (a named API key that is unset).
    pub disabled: Option<String>,
    /// The model every request sent here is rewritten to, if configured.
    pub model_override: Option<String>,
    /// Models advertised for `GET /v1/models` without asking the upstream.
    pub models: Option<Vec<String>>,
    /// Connection pools, one per worker (HTTP/1.1 and, over TLS, h2 by ALPN).
    client: HttpClient,
    /// Per-phase limits.
    pub timeouts: Timeouts,
    /// Extra attempts on this upstream before falling back.
    pub retries: u32,
    /// Base of the jittered exponential backoff between attempts.
    pub backoff: Duration,
}

/// The three limits on one exchange with an upstream.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub total: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// Failure to build an upstream (bad CA file, TLS setup).
#[derive(Debug, thiserror::Error)]
#[error("upstream `{name}`: {message}")]
pub struct UpstreamBuildError {
    pub name: String,
    pub message: String,
}

impl Upstream {
    /// Builds the upstream and its client (a connection pool for each of `workers`). Secrets are
    /// read from `env` here, once.
    pub fn build(
        config: &UpstreamConfig,
        env: &dyn EnvSource,
        workers: usize,
    ) -> Result<Self, UpstreamBuildError> {
        let fail = |message: String| UpstreamBuildError { name: config.name.clone(), message };
        let timeouts = Timeouts {
            connect: Duration::from_millis(config.connect_timeout_ms),
            first_byte: Duration::from_millis(config.first_byte_timeout_ms),
            total: Duration::from_millis(config.total_timeout_ms),
        };
        let client =
            HttpClient::new(config.ca_file.as_deref(), timeouts.connect, workers).map_err(fail)?;
        let (authorization, disabled) = match &config.api_key_env {
            None => (None, None),
            Some(var) => match env.secret(var) {
                Some(key) => {
                    let mut value = HeaderValue::try_from(format!("Bearer {key}"))
                        .map_err(|_| fail(format!("the value of {var} is not a valid header")))?;
                    value.set_sensitive(true);
                    (Some(value), None)
                }
                None => (None, Some(format!("environment variable {var} is not set or blank"))),
            },
        };
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let uris = Endpoint::ALL
            .into_iter()
            .filter_map(|e| Some((e, format!("{base_url}{}", e.upstream_path()).parse().ok()?)))
            .collect();
        Ok(Self {
            name: config.name.clone(),
            base_url,
            uris,
            authorization,
            disabled,
            model_override: config.model.clone(),
            models: config.models.clone(),
            client,
            timeouts,
            retries: config.retries,
            backoff: Duration::from_millis(config.backoff_ms),
        })
    }

    /// `host:port` of the base URL (`server.address` in traces).
    pub fn authority(&self) -> Option<String> {
        let uri: Uri = self.base_url.parse().ok()?;
        uri.authority().map(|a| a.to_string())
    }

    /// The full URL of `endpoint` here (its path, such as `/chat/completions`, after the base).
    pub fn uri(&self, endpoint: Endpoint) -> Result<Uri, http::uri::InvalidUri> {
        match self.uris.iter().find(|(known, _)| *known == endpoint) {
            Some((_, uri)) => Ok(uri.clone()),
            // Only a base that does not parse: parsed again for its error.
            None => format!("{}{}", self.base_url, endpoint.upstream_path()).parse(),
        }
    }

    /// Sends one request. Credentials are added here and nowhere else; the client's own
    /// `Authorization` header is never forwarded.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        if let Some(auth) = &self.authorization {
            request.headers_mut().insert(http::header::AUTHORIZATION, auth.clone());
        }
        self.client.send(request).await
    }
}

/// All upstreams by name.
#[derive(Debug, Default)]
pub struct Upstreams {
    by_name: HashMap<String, Arc<Upstream>>,
    /// Config order, for stable listings.
    order: Vec<Arc<Upstream>>,
}

impl Upstreams {
    /// Builds every configured upstream; logs the ones that are disabled.
    pub fn build(config: &Config, env: &dyn EnvSource) -> Result<Self, UpstreamBuildError> {
        let mut upstreams = Self::default();
        let workers = config.server.worker_count();
        for upstream_config in &config.upstreams {
            let upstream = Arc::new(Upstream::build(upstream_config, env, workers)?);
            if let Some(why) = &upstream.disabled {
                tracing::warn!(upstream = %upstream.name, "upstream disabled: {why}");
            }
            upstreams.by_name.insert(upstream.name.clone(), upstream.clone());
            upstreams.order.push(upstream);
        }
        Ok(upstreams)
    }

    /// Looks an upstream up by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.by_name.get(name)
    }

    /// Every upstream in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.order.iter()
    }
}
