//! What a plugin may import: log lines, counters, a monotonic clock, its own failure policy and
//! the request's tenant limits (0.1.1), nothing else. Also the per-store state those imports and the limits need.

use std::sync::Arc;

use super::bindings::Level;
use super::bindings::switchyard::plugin::{host, types};
use super::config::FailurePolicy;
use super::limits::{CallClock, MemoryLimiter, monotonic_ns};
use super::stats::PluginStats;

/// Longest log line a plugin may write; the rest is cut.
const MAX_LOG_BYTES: usize = 1024;

/// The data of one plugin store: one instance, for one request (or, with `isolation = "reuse"`,
/// for many; it holds nothing of any request).
pub(crate) struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) limiter: MemoryLimiter,
    /// The run-time budget of the call in progress.
    pub(crate) clock: CallClock,
    pub(crate) policy: FailurePolicy,
    /// The request's tenant limits, set for the request-phase call only (a reused instance
    /// keeps no request data), for `tenant-limits`.
    pub(crate) tenant_limits: Option<host::LimitsSnapshot>,
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<str>,
        stats: Arc<PluginStats>,
        limiter: MemoryLimiter,
        policy: FailurePolicy,
    ) -> Self {
        Self { plugin, stats, limiter, clock: CallClock::default(), policy, tenant_limits: None }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut end = message.len().min(MAX_LOG_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let msg = &message[..end];
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, "{msg}"),
            Level::Debug => tracing::debug!(plugin, "{msg}"),
            Level::Info => tracing::info!(plugin, "{msg}"),
            Level::Warn => tracing::warn!(plugin, "{msg}"),
            Level::Error => tracing::error!(plugin, "{msg}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        self.stats.counter_add(&name, delta);
    }

    fn failure_policy(&mut self) -> host::Failure {
        match self.policy {
            FailurePolicy::Closed => host::Failure::Closed,
            FailurePolicy::Open => host::Failure::Open,
        }
    }

    fn tenant_limits(&mut self) -> Option<host::LimitsSnapshot> {
        self.tenant_limits.clone()
    }

    fn now_ns(&mut self) -> u64 {
        monotonic_ns()
    }
}
