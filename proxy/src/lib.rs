//! Switchyard: an OpenAI-compatible LLM traffic proxy.
//!
//! # Layout
//! - [`config`]: the TOML file, loaded strictly and validated as a whole.
//! - [`server`]: listeners, TLS, HTTP/1.1 + h2, graceful shutdown. Entry point [`run`].
//! - [`connection`]: per-connection limits (cap, first-request and idle deadlines, file limit).
//! - [`worker`]: worker threads, one event loop each, serving their connections start to finish.
//! - [`auth`]: virtual API keys → tenants.
//! - [`ledger`]: usage, cost, limits and budgets per tenant, in memory or shared through Redis.
//! - [`pipeline`]: the request's way through the proxy, one function per step.
//! - [`request_phase`]: the plugin chain's request phase as the pipeline sees it.
//! - [`request`]: the OpenAI request, parsed once into typed form.
//! - [`texts`]: every text a request carries, as plugin entries, and their write-back.
//! - [`dispatch`]: the upstream chain, timeouts, backoff and fallback; one attempt per body mode.
//! - [`respond`]: the response phase's one owner (watching plugins, cache fill, stream relay),
//!   consumed by an upstream's answer or a cache hit.
//! - [`wire`]: OpenAI's wire shapes (error object, chunk JSON, SSE framing) in one place.
//! - [`trail`]: what happened to one request (attempts, usage, first token), noted as it happens.
//! - [`record`]: the end of a request: its access-log line and usage metrics.
//! - [`telemetry`]: OpenTelemetry GenAI spans built from the trail, exported over OTLP (HTTP or
//!   gRPC) by the `switchyard-otel` crate, which the inference service shares.
//! - [`admission`]: a tenant's limits on the request path (reserve, headers, settle).
//! - [`access_log`]: the JSON-lines access log, written off the request path.
//! - [`logs`]: the proxy's own log (text or JSON lines with request and trace ids).
//! - [`cache`]: the response cache (moka, bounded by bytes, TTL and key from plugins).
//! - [`upstream`]: configured upstreams and their pooled rustls clients.
//! - [`models`]: `GET /v1/models` as the union of the upstreams'.
//! - [`admin`]: health, metrics and the token-protected admin API.
//! - [`error`]: the error type and its one mapping to OpenAI-shaped HTTP responses.
//! - [`plugin`]: the WebAssembly plugin runtime (sandbox limits, chain, hot swap).
//! - [`kit`]: `switchyard plugin`: scaffold, build, fixture tests, sign and push plugins.
//! - [`metrics`], [`state`], [`body`], [`env`], [`alloc`]: shared plumbing.
//! - `fuzzing` (feature `fuzzing`, hidden): the fuzz targets' logic, for fuzz/ and the tests.

pub use alloc::Allocator;

pub mod access_log;
pub mod admin;
pub mod admission;
pub mod alloc;
pub mod auth;
pub mod body;
pub mod cache;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod env;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod kit;
pub mod ledger;
pub mod logs;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod plugin;
pub mod record;
pub mod request;
pub mod request_phase;
pub mod respond;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod texts;
pub mod trail;
pub mod upstream;
pub mod wire;
pub mod worker;

pub use server::{Listeners, RunError, run, serve};
