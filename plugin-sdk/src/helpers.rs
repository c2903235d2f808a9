//! Builders for decisions and thin wrappers over the host imports, so plugin code stays short.

use std::ops::Range;

use crate::bindings::switchyard::plugin::host;
use crate::{
    CacheDirective, CacheEntry, Changes, Decision, Delta, ErrorReply, Escalation, Level,
    LimitsSnapshot, Reply, Route, TextEdit,
};

/// The plugin's config: the `config` table of its `[[plugin]]` entry, as JSON text.
#[derive(Debug, Clone)]
pub struct Config {
    json: String,
}

impl Config {
    /// Wrap config JSON (the host passes "{}" when the entry has no `config`).
    pub fn new(json: String) -> Self {
        Self { json }
    }

    /// The raw JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// Deserialize into your own type; the error names the problem so that loading the plugin
    /// fails with a useful reason.
    #[cfg(feature = "json")]
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.json).map_err(|e| format!("invalid plugin config: {e}"))
    }
}

impl Changes {
    /// No changes: the request goes on as it is.
    pub fn new() -> Self {
        Self {
            route: None,
            edits: Vec::new(),
            cache: None,
            add_headers: Vec::new(),
            tags: Vec::new(),
            watch_response: false,
        }
    }

    /// Send the request to `upstream` (a name from the proxy config), optionally renaming the model.
    pub fn route(mut self, upstream: &str, model: Option<&str>) -> Self {
        self.route = Some(Route {
            upstream: upstream.to_string(),
            model: model.map(str::to_string),
            fallbacks: Vec::new(),
        });
        self
    }

    /// Add a fallback upstream to the route set with [`Changes::route`] (ignored without one).
    pub fn fallback(mut self, upstream: &str) -> Self {
        if let Some(route) = &mut self.route {
            route.fallbacks.push(upstream.to_string());
        }
        self
    }

    /// Edit a message's text.
    pub fn edit(mut self, edit: TextEdit) -> Self {
        self.edits.push(edit);
        self
    }

    /// Neither read nor write the response cache.
    pub fn no_cache(mut self) -> Self {
        self.cache = Some(CacheDirective::NoCache);
        self
    }

    /// Cache the response under `key` for `ttl_seconds`.
    pub fn cache(mut self, key: &str, ttl_seconds: u32) -> Self {
        self.cache = Some(CacheDirective::Store(CacheEntry { key: key.to_string(), ttl_seconds }));
        self
    }

    /// Add a header to the upstream request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.add_headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set a tag for later plugins, metrics and traces.
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.push((key.to_string(), value.to_string()));
        self
    }

    /// Keep this instance alive and show it the response.
    pub fn watch_response(mut self) -> Self {
        self.watch_response = true;
        self
    }
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Decision {
    /// Proceed and change nothing.
    pub fn pass() -> Self {
        Decision::Proceed(Changes::new())
    }

    /// Answer now with an OpenAI-shaped error; nothing is forwarded.
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        Decision::Respond(Reply::Error(ErrorReply::new(status, kind, message)))
    }

    /// Answer now with a complete assistant message.
    pub fn completion(text: &str) -> Self {
        Decision::Respond(Reply::Completion(text.to_string()))
    }
}

impl ErrorReply {
    /// An OpenAI-shaped error with this status (400..=599), type and message.
    pub fn new(status: u16, kind: &str, message: &str) -> Self {
        Self { status, message: message.to_string(), kind: kind.to_string() }
    }
}

impl Escalation {
    /// Retry on `upstream` (only honoured before the response is committed).
    pub fn to(upstream: &str, reason: &str) -> Self {
        Self { upstream: upstream.to_string(), model: None, reason: reason.to_string() }
    }
}

impl TextEdit {
    /// Replace the byte range `range` of message (or choice) `index` with `replacement`.
    /// Offsets must lie on char boundaries.
    pub fn new(index: usize, range: Range<usize>, replacement: &str) -> Self {
        Self {
            message: saturate(index),
            start: saturate(range.start),
            end: saturate(range.end),
            replacement: replacement.to_string(),
        }
    }
}

impl Delta {
    /// Text for choice `choice`.
    pub fn new(choice: u32, text: &str) -> Self {
        Self { choice, text: text.to_string() }
    }
}

/// Offsets past u32::MAX cannot be real (the host bounds request sizes far below); saturating makes
/// the host reject the edit instead of silently editing the wrong place.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Log a line under this plugin's name. Never log prompt text.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Add `delta` to this plugin's counter `name`.
pub fn counter_add(name: &str, delta: u64) {
    host::counter_add(name, delta);
}

/// Monotonic nanoseconds since an arbitrary point.
pub fn now_ns() -> u64 {
    host::now_ns()
}

/// Whether this plugin runs fail-open (`[[plugin]] failure = "open"`): a redactor can refuse that
/// in `init`. Importing this needs a host with `failure-policy` (any host of this repository).
pub fn fails_open() -> bool {
    host::failure_policy() == host::Failure::Open
}

/// The request's tenant limits and what is left of them now ([`LimitsSnapshot`]): `None` without
/// a tenant, for a tenant without limits, when the ledger did not answer, or outside
/// [`crate::Plugin::on_request`]. Contract 0.1.1: a plugin that calls this needs a host of 0.1.1
/// or later (one that does not call it loads on any 0.1 host).
pub fn tenant_limits() -> Option<LimitsSnapshot> {
    host::tenant_limits()
}

/// One micro-USD (the unit of money in [`LimitsSnapshot`]) in USD.
pub const USD_PER_MICRO: f64 = 1e-6;

impl LimitsSnapshot {
    /// The budget left today in USD, when the tenant has a budget.
    pub fn remaining_budget_usd(&self) -> Option<f64> {
        self.remaining_budget_micro_usd.map(|m| m as f64 * USD_PER_MICRO)
    }

    /// Spent (and reserved by requests in flight) today, in USD.
    pub fn spent_usd_today(&self) -> f64 {
        self.spent_micro_usd_today as f64 * USD_PER_MICRO
    }
}

/// Whether this is the proxy's probe request (tag `switchyard.probe`), sent through every new
/// plugin version before it goes live. A plugin must handle it without failing.
pub fn is_probe(req: &crate::Request) -> bool {
    req.tags.iter().any(|(k, _)| k == "switchyard.probe")
}

/// Stream events whose `choice` has this bit set carry a fragment of a tool call's `arguments`,
/// not choice text: `choice = TOOL_CALL_CHOICE + 256 * c + j` for tool call `j` of choice `c`.
/// Deltas for such a choice go back into that tool call's arguments (see plugin.wit).
pub const TOOL_CALL_CHOICE: u32 = 1 << 31;

/// Whether a request entry is a conversation text (a message, prompt or input), not one of the
/// host's `field:` entries (other text fields) or `binary:` entries (parts without text).
pub fn is_turn(role: &str) -> bool {
    !role.starts_with("field:") && !role.starts_with("binary:")
}
