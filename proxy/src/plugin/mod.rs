//! The plugin runtime: sandboxed WebAssembly components that make per-request decisions.
//!
//! Layout (each file owns one thing):
//! - [`bindings`]: host bindings generated from the WIT contract in `plugin-sdk/wit`, and the
//!   typed values that cross the boundary.
//! - [`config`]: the `[plugins]` / `[[plugin]]` config and its `validate()`.
//! - [`limits`]: every sandbox limit (pooling allocator, epoch deadline and ticker, memory cap,
//!   bounded concurrent instances) and the engine built from them.
//! - `lanes`: the warm and the overflow instance pool, and which one a new store goes to.
//! - `host`: what a plugin may import (log, counters, clock, tenant limits) and the per-store
//!   state.
//! - `wasi`: deny-all WASI 0.2 for components whose toolchain imports it (componentize-py).
//! - `instance`: one fresh instance: instantiate, call a hook, classify failures.
//! - `validate`: checks a decision before the proxy acts on it.
//! - [`chain`]: the request phase over the whole chain, with failure policies, as a
//!   [`RequestOutcome`].
//! - [`response`]: the response phase for plugins that asked to watch it.
//! - [`stats`]: per-plugin calls, failures by kind and a call-time histogram for /metrics.
//! - [`artifacts`]: the precompiled-artifact cache (the proxy's one `unsafe`, reviewed).
//! - [`registry`]: compile, sign-check, probe and atomically swap plugin sets (hot swap).
//! - `signature`: optional Ed25519 signature check of a plugin file.
//! - `watch`: reload when a file in the plugin directory changes.
//!
//! The flow for one request: `registry.current()` gives the live [`PluginSet`];
//! [`PluginSet::on_request`] runs the chain and returns a [`RequestOutcome`]; when it proceeds with
//! a non-empty [`ResponseWatch`], the pipeline feeds the response (whole, or event by event) to it.

pub mod artifacts;
pub mod bindings;
pub mod chain;
pub mod config;
mod error;
pub mod function_cache;
mod host;
mod instance;
mod lanes;
pub mod limits;
pub mod registry;
pub mod response;
pub mod signature;
pub mod stats;
pub(crate) mod validate;
mod wasi;
mod watch;

pub use bindings::{
    CacheDirective, CacheEntry, Delta, ErrorReply, Escalation, LimitsSnapshot, LlmRequest,
    LlmResponse, Message, RawReply, Reply, Route, StreamEvent, TextEdit,
};
pub use chain::PluginSet;
pub use chain::{CachePolicy, Proceed, RequestOutcome};
pub use config::{FailurePolicy, Isolation, PluginEntry, PluginsSection};
pub use error::{FailureKind, LoadError, PluginFailure};
pub use limits::{EngineLimits, PluginEngine};
pub use registry::{PluginInfo, PluginRegistry, ReloadReport};
pub use response::{EventOutcome, ResponseOutcome, ResponseWatch};
pub use stats::PluginStats;
pub use watch::DirWatcher;
