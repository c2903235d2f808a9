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
//! - [`phases`]: the plugin chain's request phase as the pipeline sees it.
//! - [`request`]: the OpenAI request, parsed once into typed form.
//! - [`texts`]: every text a request carries, as plugin entries, and their write-back.
//! - [`dispatch`]: the upstream chain, timeouts, backoff and fallback.
//! - [`sse`]: holding a stream until its first content event, then relaying it.
//! - [`stream_phase`]: SSE chunks through the plugins that watch a streamed response.
//! - [`cache`]: the response cache (moka, bounded by bytes, TTL and key from plugins).
//! - [`upstream`]: configured upstreams and their pooled rustls clients.
//! - [`models`]: `GET /v1/models` as the union of the upstreams'.
//! - [`admin`]: health, metrics and the token-protected admin API.
//! - [`error`]: the error type and its one mapping to OpenAI-shaped HTTP responses.
//! - [`plugin`]: the WebAssembly plugin runtime (sandbox limits, chain, hot swap).
//! - [`metrics`], [`state`], [`body`], [`env`]: shared plumbing.
//! - `fuzzing` (feature `fuzzing`, hidden): the fuzz targets' logic, for fuzz/ and the tests.

pub mod admin;
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
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod phases;
pub mod pipeline;
pub mod plugin;
pub mod request;
pub mod server;
pub mod sse;
pub mod state;
pub mod stream_phase;
pub mod texts;
pub mod upstream;
pub mod worker;

pub use server::{Listeners, RunError, run, serve};
