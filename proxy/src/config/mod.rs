//! The configuration file: its typed shape, loading it strictly, and checking it as a whole.
//!
//! Loading never stops at the first problem it can report: unknown keys anywhere in the file are
//! collected together, and [`validate`] lists every semantic problem at once, each with the key
//! path a user can search for in their file.

mod ledger;
mod load;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::plugin::{PluginEntry, PluginsSection};

pub use ledger::{OnUnavailable, PriceConfig, StateBackend, StateConfig};
pub use load::{load, parse};
pub use validate::validate;

/// One problem in a configuration file, located by its key path (`upstream[1].base_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file: dotted keys, array entries as `[i]`.
    pub path: String,
    /// What is wrong, in words that say how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in {source_name}", problems.len())]
pub struct ConfigError {
    /// The file (or `<string>`) the problems were found in.
    pub source_name: String,
    /// All of them, in file order where known.
    pub problems: Vec<Problem>,
}

/// The whole configuration, as written in `switchyard.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The client-facing listener.
    pub server: ServerConfig,
    /// The operator-facing listener (health, metrics, admin API).
    pub admin: AdminConfig,
    /// Where requests can go; the order here is only for display.
    #[serde(rename = "upstream", default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// Which upstream serves a request when no plugin decides otherwise.
    pub routing: RoutingConfig,
    /// `[plugins]`: where plugin files live and the runtime's limits. Absent: no plugins run.
    pub plugins: Option<PluginsSection>,
    /// `[[plugin]]`: the chain, run in this order for every request.
    #[serde(rename = "plugin", default)]
    pub plugin_chain: Vec<PluginEntry>,
    /// Virtual API keys. When any is configured, every API request must present one.
    #[serde(rename = "tenant", default)]
    pub tenants: Vec<TenantConfig>,
    /// `[cache]`: the response cache's bounds. Plugins decide what is cached.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[log]`: the access log.
    #[serde(default)]
    pub log: LogConfig,
    /// `[telemetry]`: OpenTelemetry traces. Absent: none.
    pub telemetry: Option<crate::telemetry::TelemetryConfig>,
    /// `[[price]]`: USD per million tokens, per upstream and optionally per model. An upstream
    /// without a matching entry costs nothing (the local model, typically).
    #[serde(rename = "price", default)]
    pub prices: Vec<PriceConfig>,
    /// `[state]`: where the usage ledger (limits, budgets) keeps its counters.
    #[serde(default)]
    pub state: StateConfig,
}

/// `[log]`: the proxy's own log and the access log.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogConfig {
    /// The access log, one JSON line per request: `"stdout"`, or a file to append to. Absent: off.
    pub access: Option<String>,
    /// The proxy's own log (stderr): `text` (default) or `json` lines, which carry each request's
    /// `request_id`, `trace_id` and `span_id` for log–trace correlation. `--log-format` overrides
    /// it.
    #[serde(default)]
    pub format: LogFormat,
}

/// How the proxy's own log is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[cache]`: the response cache. It holds only what a plugin marked cacheable (a cache-policy
/// plugin); without one nothing is stored and the bounds cost nothing.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheConfig {
    /// Total size of the cached bodies, in MiB.
    #[serde(default = "default_cache_max_mib")]
    pub max_mib: u64,
    /// Largest single answer that is stored, in KiB; larger answers are relayed, not cached.
    #[serde(default = "default_cache_max_entry_kib")]
    pub max_entry_kib: u64,
    /// Keep answers in the `[state]` Redis too, as a second level every replica shares (needs
    /// `[state] backend = "redis"`).
    #[serde(default)]
    pub shared: bool,
    /// Longest a shared lookup may take before it counts as a miss, in ms.
    #[serde(default = "default_cache_shared_timeout_ms")]
    pub shared_timeout_ms: u64,
    /// Largest answer written to the shared level, in KiB (at most 8192).
    #[serde(default = "default_cache_shared_max_entry_kib")]
    pub shared_max_entry_kib: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_mib: default_cache_max_mib(),
            max_entry_kib: default_cache_max_entry_kib(),
            shared: false,
            shared_timeout_ms: default_cache_shared_timeout_ms(),
            shared_max_entry_kib: default_cache_shared_max_entry_kib(),
        }
    }
}

impl CacheConfig {
    pub fn shared_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shared_timeout_ms)
    }
}

fn default_cache_shared_timeout_ms() -> u64 {
    20
}

fn default_cache_shared_max_entry_kib() -> u64 {
    256
}

fn default_cache_max_mib() -> u64 {
    64
}

fn default_cache_max_entry_kib() -> u64 {
    1024
}

/// `[[tenant]]`: a client identity with its own virtual API key.
#[derive(Debug, Clone, Deserialize)]
pub struct TenantConfig {
    /// Reported to plugins, and the boundary no cached answer crosses.
    pub name: String,
    /// Environment variable holding the key clients send as `Authorization: Bearer <key>`.
    pub key_env: String,
    /// Requests admitted per fixed minute window (cache hits included); absent: no limit.
    pub requests_per_minute: Option<u64>,
    /// Tokens reserved and used per fixed minute window (prompt + completion); absent: no limit.
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once (cache hits excluded); absent: no limit.
    pub max_concurrent: Option<u64>,
    /// USD spent per UTC day, worst case reserved at admission; absent: no limit.
    pub budget_usd_per_day: Option<f64>,
    /// Completion tokens reserved for a request that does not set `max_tokens` (or
    /// `max_completion_tokens`); settlement corrects it to what was really used.
    #[serde(default = "defaults::default_max_tokens")]
    pub default_max_tokens: u64,
}

/// `[server]`: the client-facing listener and the limits that protect it from bad clients.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    /// Address to bind, `host:port`.
    pub listen: String,
    /// Optional TLS; without it the listener speaks cleartext HTTP/1.1 and h2c.
    pub tls: Option<TlsConfig>,
    /// Largest request body accepted; a larger one gets 413 before it is read whole.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: u64,
    /// A client that has not sent its request headers within this is disconnected.
    #[serde(default = "defaults::header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A client that has not sent its whole body within this gets 408.
    #[serde(default = "defaults::body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// On SIGTERM/SIGINT, in-flight requests and streams get this long to finish.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Worker threads, each with its own event loop, connections and upstream pools; 0 means one
    /// per CPU.
    #[serde(default)]
    pub workers: usize,
    /// Open API connections at most, all workers together; past it new connections are closed at
    /// once, so idle or hostile clients cannot run the process out of file descriptors.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive and
    /// HTTP/2 alike).
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A response that has waited this long for the client to read it is cut, and the connection
    /// closed (nginx's `send_timeout`).
    #[serde(default = "defaults::send_timeout_ms")]
    pub send_timeout_ms: u64,
    /// How often an HTTP/2 connection is pinged; a peer that does not answer is closed.
    #[serde(default = "defaults::http2_keepalive_interval_ms")]
    pub http2_keepalive_interval_ms: u64,
    /// Request-body bytes buffered at once across all connections and streams; a body that would
    /// pass it gets 503 rather than growing the process without bound.
    #[serde(default = "defaults::max_buffered_body_bytes")]
    pub max_buffered_body_bytes: u64,
    /// Largest single event (or line) of an upstream's SSE stream; a larger one ends the stream.
    #[serde(default = "defaults::max_sse_event_bytes")]
    pub max_sse_event_bytes: usize,
    /// Largest upstream response body that is not a stream.
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: u64,
}

/// `[server.tls]`: PEM files, relative to the configuration file.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key for the leaf certificate.
    pub key: PathBuf,
}

/// `[admin]`: health, metrics and (token-protected) management endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct AdminConfig {
    /// Address to bind, `host:port`. Keep it on a private interface.
    pub listen: String,
    /// Environment variable holding the bearer token for `/admin/*`. Health and metrics are open,
    /// as they are on Envoy's admin port, so that probes and scrapers need no secret.
    pub token_env: Option<String>,
}

/// `[[upstream]]`: one OpenAI-compatible API the proxy can forward to.
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamConfig {
    /// Referenced by `[routing]`, reported in `x-switchyard-upstream` and metrics.
    pub name: String,
    /// The API root including its version segment, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Environment variable holding the upstream's API key, sent as `Authorization: Bearer`.
    /// When it is named but unset, the upstream is disabled rather than sent unauthenticated.
    pub api_key_env: Option<String>,
    /// Extra PEM trust root(s) for private endpoints, on top of the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// When set, the request's `model` is replaced by this before it is sent here, so a fallback
    /// from one provider to another asks each for a model it has.
    pub model: Option<String>,
    /// Models this upstream serves, for `GET /v1/models`. When absent the upstream is asked.
    pub models: Option<Vec<String>>,
    /// Limit for opening the TCP (and TLS) connection.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Limit from sending the request to the response headers, or for a stream to its first
    /// content event. Past it the next upstream is tried.
    #[serde(default = "defaults::first_byte_timeout_ms")]
    pub first_byte_timeout_ms: u64,
    /// Limit for the whole exchange, body or stream included.
    #[serde(default = "defaults::total_timeout_ms")]
    pub total_timeout_ms: u64,
    /// Extra attempts on this upstream before moving down the fallback chain.
    #[serde(default)]
    pub retries: u32,
    /// Base of the jittered exponential backoff between attempts.
    #[serde(default = "defaults::backoff_ms")]
    pub backoff_ms: u64,
}

/// `[routing]`: the default chain when no plugin sets a route.
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingConfig {
    /// The upstream tried first for text endpoints.
    pub default: String,
    /// Tried in order after `default` fails before answering.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Where `/v1/images/*` goes; `default` when absent.
    pub images: Option<String>,
}

impl ServerConfig {
    /// The bind address; [`validate`] has already checked that it parses.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
    pub fn http2_keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.http2_keepalive_interval_ms)
    }
    /// How many workers serve the API listener: `workers`, or one per CPU when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl AdminConfig {
    /// The bind address; [`validate`] has already checked that it parses.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }
}

impl RoutingConfig {
    /// The upstream for image endpoints.
    pub fn images_upstream(&self) -> &str {
        self.images.as_deref().unwrap_or(&self.default)
    }
}

/// Defaults, named so that docs/config.md and the code agree on one place.
pub mod defaults {
    pub fn max_body_bytes() -> u64 {
        10 * 1024 * 1024
    }
    pub fn header_read_timeout_ms() -> u64 {
        10_000
    }
    pub fn body_read_timeout_ms() -> u64 {
        30_000
    }
    pub fn drain_timeout_ms() -> u64 {
        30_000
    }
    pub fn max_connections() -> usize {
        10_000
    }
    pub fn idle_timeout_ms() -> u64 {
        60_000
    }
    pub fn send_timeout_ms() -> u64 {
        60_000
    }
    pub fn http2_keepalive_interval_ms() -> u64 {
        30_000
    }
    pub fn max_buffered_body_bytes() -> u64 {
        256 * 1024 * 1024
    }
    pub fn max_sse_event_bytes() -> usize {
        1024 * 1024
    }
    pub fn max_response_bytes() -> u64 {
        64 * 1024 * 1024
    }
    pub fn connect_timeout_ms() -> u64 {
        2_000
    }
    pub fn first_byte_timeout_ms() -> u64 {
        60_000
    }
    pub fn total_timeout_ms() -> u64 {
        600_000
    }
    pub fn backoff_ms() -> u64 {
        25
    }
    pub fn default_max_tokens() -> u64 {
        1024
    }
}
