//! What can go wrong with a plugin: failures of one call (answered by the failure policy) and
//! failures to load a plugin (answered by keeping the old set).

use std::fmt;
use std::sync::Arc;

use super::config::FailurePolicy;

/// Why a plugin call failed. Every kind is counted per plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureKind {
    /// The call ran past its epoch deadline (`timeout_ms`).
    #[error("deadline exceeded")]
    Timeout,
    /// The instance tried to grow its memory past its cap.
    #[error("memory cap exceeded")]
    MemoryCap,
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    #[error("trap: {0}")]
    Trap(String),
    /// The guest returned a decision that failed validation.
    #[error("invalid decision: {0}")]
    InvalidDecision(String),
    /// The guest returned `Err` from a hook (including `init`).
    #[error("plugin error: {0}")]
    PluginError(String),
    /// No instance slot was free within the queue timeout.
    #[error("busy: no free plugin instance")]
    Busy,
    /// Instantiation failed for another reason (pool exhausted, link error).
    #[error("instantiate: {0}")]
    Instantiate(String),
}

impl FailureKind {
    /// Number of kinds, for per-kind counters.
    pub const COUNT: usize = 7;

    /// A short stable label for metrics (`kind="timeout"`).
    pub fn label(&self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// Labels in counter order.
    pub const LABELS: [&'static str; Self::COUNT] =
        ["timeout", "memory", "trap", "invalid_decision", "plugin_error", "busy", "instantiate"];

    pub(crate) fn index(&self) -> usize {
        match self {
            Self::Timeout => 0,
            Self::MemoryCap => 1,
            Self::Trap(_) => 2,
            Self::InvalidDecision(_) => 3,
            Self::PluginError(_) => 4,
            Self::Busy => 5,
            Self::Instantiate(_) => 6,
        }
    }
}

/// One failed plugin call, with who failed and which policy applies.
#[derive(Debug, Clone)]
pub struct PluginFailure {
    /// The plugin's configured name.
    pub plugin: Arc<str>,
    pub kind: FailureKind,
    /// The plugin's policy: `Closed` means the request must be refused.
    pub policy: FailurePolicy,
}

impl PluginFailure {
    /// The HTTP status a fail-closed refusal should carry: 503 when the runtime was saturated
    /// (retry later), 500 otherwise (the plugin is broken). The body should be OpenAI-shaped
    /// (`{"error": {"message", "type": "plugin_error", "code"}}`) and must not echo the prompt.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            FailureKind::Busy => 503,
            _ => 500,
        }
    }

    /// A message safe to send to the client: plugin name and failure kind, never guest text.
    pub fn public_message(&self) -> String {
        format!("plugin {} failed ({})", self.plugin, self.kind.label())
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.plugin, self.kind)
    }
}

/// Why a plugin (and so the whole new set) could not go live. The old set keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {plugin}: cannot read {path}: {source}")]
    Read { plugin: String, path: String, source: std::io::Error },
    #[error("plugin {plugin}: signature check failed: {reason}")]
    Signature { plugin: String, reason: String },
    #[error("plugin {plugin}: does not compile as a switchyard:plugin@0.1 component: {reason}")]
    Compile { plugin: String, reason: String },
    #[error(
        "plugin {plugin}: its linear memory starts at {needs_mib} MiB, over its cap of {cap_mib} \
         MiB: set memory_mib = {suggest_mib} in its [[plugin]] table (or leave memory_mib unset), \
         and plugins.max_memory_mib (now {max_memory_mib}) to at least that"
    )]
    Memory {
        plugin: String,
        needs_mib: usize,
        cap_mib: usize,
        suggest_mib: usize,
        max_memory_mib: u32,
    },
    #[error("plugin {plugin}: probe request failed: {failure}")]
    Probe { plugin: String, failure: FailureKind },
    #[error("invalid plugin config: {0}")]
    Config(String),
    #[error("no plugin named {0} is configured")]
    UnknownPlugin(String),
    #[error("the compile task died: {0}")]
    Join(String),
}

impl LoadError {
    /// The plugin that could not go live, when one is to blame.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            Self::Read { plugin, .. }
            | Self::Signature { plugin, .. }
            | Self::Compile { plugin, .. }
            | Self::Memory { plugin, .. }
            | Self::Probe { plugin, .. } => Some(plugin),
            Self::UnknownPlugin(plugin) => Some(plugin),
            Self::Config(_) | Self::Join(_) => None,
        }
    }
}
