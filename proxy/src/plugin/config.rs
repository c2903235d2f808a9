//! The plugin part of the proxy config: `[plugins]` and `[[plugin]]`, strict (`deny_unknown_fields`)
//! and checked in full by [`validate`], which lists every problem with its key path.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::config::Problem;

use super::limits::{EngineLimits, MAX_TIMEOUT_MS};

/// `[plugins]`: where plugins live, who may sign them, and the runtime's global limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    /// Directory that `[[plugin]].file` is relative to; watched for changes when `watch` is on.
    pub dir: PathBuf,
    /// Ed25519 public keys (base64 of the 32 raw bytes). When set, only plugins with a valid
    /// detached signature (`<file>.sig`) from one of these keys load.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Reload when a file in `dir` changes.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Most plugin instances alive at once over all requests (pool size).
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// How long a request waits for a free instance before the plugin fails as busy.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Upper bound for any plugin's `memory_mib` (the pool's slot size).
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: u32,
    /// Linear memory of all plugin instances together; past it new instances and `memory.grow`
    /// fail as busy (503).
    #[serde(default = "default_memory_budget_mib")]
    pub memory_budget_mib: u32,
    /// Instances that may hold a warm pool slot at once: a slot that keeps the pages its last
    /// instance wrote (up to `keep_resident_kib`), so the next fresh instance there starts
    /// without page faults. Instances beyond it run in slots that return all their memory.
    /// 0: none keeps anything.
    #[serde(default = "default_resident_instances")]
    pub resident_instances: u32,
    /// KiB of written pages a warm slot keeps. At most `resident_instances × keep_resident_kib`
    /// stays resident once the proxy is idle again.
    #[serde(default = "default_keep_resident_kib")]
    pub keep_resident_kib: u32,
    /// Directory of precompiled plugin code (`plugin/artifacts.rs`): a restart, or a swap back
    /// to bytes compiled before, loads in milliseconds instead of compiling again (seconds for
    /// a JavaScript or Python plugin). Created owner-only; trust it as the proxy binary. Unset:
    /// every load compiles.
    #[serde(default)]
    pub artifact_cache: Option<PathBuf>,
    /// Request headers shown to plugins (for example a routing hint). Credentials
    /// (`authorization`, `cookie`, `proxy-authorization`) are never shown.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Write `/tmp/perf-<pid>.map` so that `perf record`/`perf report` name plugin functions.
    /// Profiling only: off by default (the file tells local users where code lives).
    #[serde(default)]
    pub perf_map: bool,
}

/// Fail-closed or fail-open: what a failure of this plugin does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Refuse the request (5xx); nothing is forwarded. For redaction and guards.
    Closed,
    /// Skip this plugin's decision; the request goes on as if it were not there. For routing and
    /// caching.
    Open,
}

/// Whether a plugin gets a fresh instance for every request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A fresh instance (and memory) per request: nothing can outlive the request. The default,
    /// and the only sane choice for plugins that see secrets (redaction).
    #[default]
    Fresh,
    /// Instances that did not watch a response go back to a small idle pool, `init` already
    /// done, and serve later requests: no instantiation, no config parsing, warm memory. Only
    /// for plugins that keep no request data after `on-request` returns (routing, cache policy).
    Reuse,
}

/// One `[[plugin]]` entry: a link in the chain, run in config order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Unique name: logs, metrics, the admin API.
    pub name: String,
    /// The component file, relative to `plugins.dir`.
    pub file: PathBuf,
    pub failure: FailurePolicy,
    /// Handed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Deadline of each call into the plugin.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Memory cap of one instance. Unset: what the component's memory starts at, plus
    /// headroom, and at least 16 MiB (see `limits::auto_memory_bytes`), so that a JavaScript or
    /// Python plugin, whose interpreter starts with tens of MiB, runs without tuning.
    #[serde(default)]
    pub memory_mib: Option<u32>,
    /// `fresh` (default) or `reuse`.
    #[serde(default)]
    pub isolation: Isolation,
}

impl PluginEntry {
    /// The config as the JSON text `init` receives.
    pub fn config_json(&self) -> String {
        serde_json::Value::Object(self.config.clone()).to_string()
    }
}

impl PluginsSection {
    /// A section with every default, for tests and embedding.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            trusted_keys: Vec::new(),
            watch: true,
            max_instances: default_max_instances(),
            queue_timeout_ms: default_queue_timeout_ms(),
            max_memory_mib: default_max_memory_mib(),
            memory_budget_mib: default_memory_budget_mib(),
            resident_instances: default_resident_instances(),
            keep_resident_kib: default_keep_resident_kib(),
            artifact_cache: None,
            headers: Vec::new(),
            perf_map: false,
        }
    }

    /// The engine-wide limits this section asks for.
    pub fn engine_limits(&self) -> EngineLimits {
        EngineLimits {
            max_instances: self.max_instances,
            queue_timeout: std::time::Duration::from_millis(self.queue_timeout_ms),
            max_memory_bytes: (self.max_memory_mib as usize) << 20,
            memory_budget_bytes: (self.memory_budget_mib as usize) << 20,
            resident_instances: self.resident_instances,
            keep_resident_bytes: (self.keep_resident_kib as usize) << 10,
            function_cache: self.artifact_cache.as_ref().map(|dir| dir.join("functions")),
            perf_map: self.perf_map,
            ..EngineLimits::default()
        }
    }
}

impl PluginEntry {
    /// An entry with default limits and an empty config.
    pub fn new(name: &str, file: impl Into<PathBuf>, failure: FailurePolicy) -> Self {
        Self {
            name: name.to_string(),
            file: file.into(),
            failure,
            config: serde_json::Map::new(),
            timeout_ms: default_timeout_ms(),
            memory_mib: None,
            isolation: Isolation::Fresh,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_max_instances() -> u32 {
    // A watching plugin (pii-redact restoring placeholders) holds its instance for the whole
    // response, so this is also the bound on such requests in flight.
    super::limits::default_max_instances()
}
fn default_memory_budget_mib() -> u32 {
    u32::try_from(EngineLimits::default().memory_budget_bytes >> 20).unwrap_or(u32::MAX)
}
fn default_resident_instances() -> u32 {
    EngineLimits::default().resident_instances
}
fn default_keep_resident_kib() -> u32 {
    u32::try_from(EngineLimits::default().keep_resident_bytes >> 10).unwrap_or(u32::MAX)
}
fn default_queue_timeout_ms() -> u64 {
    50
}
fn default_max_memory_mib() -> u32 {
    64
}
fn default_timeout_ms() -> u64 {
    5
}

/// Most instance slots a pool may have. Each slot's fiber stack is two memory mappings (the
/// stack and its guard page) and each live memory up to two more: Linux allows a process 65,530
/// mappings by default (`vm.max_map_count`).
const MAX_INSTANCES: u32 = 20_000;
/// Most address space (MiB) the pool's memory slots may reserve; x86-64 gives a process 128 TiB.
const MAX_RESERVED_MIB: u64 = 16 << 20;

/// Check `[plugins]` and every `[[plugin]]`; returns every problem, not just the first.
pub fn validate(section: &PluginsSection, entries: &[PluginEntry]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad =
        |path: String, message: &str| problems.push(Problem { path, message: message.to_string() });
    if section.dir.as_os_str().is_empty() {
        bad("plugins.dir".into(), "must not be empty");
    }
    for (i, key) in section.trusted_keys.iter().enumerate() {
        if let Err(e) = super::signature::parse_key(key) {
            bad(format!("plugins.trusted_keys[{i}]"), &e);
        }
    }
    for (i, name) in section.headers.iter().enumerate() {
        if http::HeaderName::from_bytes(name.as_bytes()).map_or(true, |h| h.as_str() != name) {
            bad(format!("plugins.headers[{i}]"), "must be a lower-case header name");
        } else if matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization") {
            bad(format!("plugins.headers[{i}]"), "credentials are never shown to plugins");
        }
    }
    if !(1..=MAX_INSTANCES).contains(&section.max_instances) {
        bad("plugins.max_instances".into(), "must be between 1 and 20000");
    }
    if section.queue_timeout_ms > 10_000 {
        bad("plugins.queue_timeout_ms".into(), "must be at most 10000");
    }
    if !(1..=4096).contains(&section.max_memory_mib) {
        bad("plugins.max_memory_mib".into(), "must be between 1 and 4096");
    }
    // Every pool slot reserves `max_memory_mib` of address space (not memory).
    let reserved = u64::from(section.max_instances) * u64::from(section.max_memory_mib);
    if reserved > MAX_RESERVED_MIB {
        bad(
            "plugins.max_instances".into(),
            "times plugins.max_memory_mib must be at most 16 TiB of address space",
        );
    }
    if section.resident_instances > MAX_INSTANCES {
        bad("plugins.resident_instances".into(), "must be at most 20000");
    }
    if u64::from(section.keep_resident_kib) > u64::from(section.max_memory_mib) << 10 {
        bad("plugins.keep_resident_kib".into(), "must be at most plugins.max_memory_mib × 1024");
    }
    if !(16..=1 << 20).contains(&section.memory_budget_mib) {
        bad("plugins.memory_budget_mib".into(), "must be between 16 and 1048576");
    }
    let mut names = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let at = |key: &str| format!("plugin[{i}].{key}");
        let name_ok = !e.name.is_empty()
            && e.name.len() <= 64
            && e.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            bad(at("name"), "must be 1-64 chars of a-z, 0-9, '-' or '_'");
        } else if !names.insert(e.name.as_str()) {
            bad(at("name"), "is used by an earlier plugin");
        }
        if !is_plain_relative(&e.file) {
            bad(at("file"), "must be a relative path inside plugins.dir (no '..')");
        } else if e.file.extension().is_none_or(|x| x != "wasm") {
            bad(at("file"), "must end in .wasm");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&e.timeout_ms) {
            bad(at("timeout_ms"), &format!("must be between 1 and {MAX_TIMEOUT_MS}"));
        }
        if e.memory_mib.is_some_and(|m| m == 0 || m > section.max_memory_mib) {
            bad(at("memory_mib"), "must be at least 1 and at most plugins.max_memory_mib");
        }
        if e.failure == FailurePolicy::Open
            && is_redactor(e)
            && e.config.get(ALLOW_FAIL_OPEN) != Some(&serde_json::Value::Bool(true))
        {
            bad(
                at("failure"),
                "pii-redact must fail closed: failing open forwards what it could not redact \
                 (set config.allow_fail_open = true to accept that)",
            );
        }
    }
    problems
}

/// The `config` key that acknowledges a redactor running fail-open.
pub const ALLOW_FAIL_OPEN: &str = "allow_fail_open";

/// Whether an entry runs the built-in redactor, known by its name or its file's (the config is
/// all `check` reads; it does not load components).
fn is_redactor(e: &PluginEntry) -> bool {
    let stem = e.file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    [e.name.as_str(), stem].iter().any(|n| n.replace('_', "-") == "pii-redact")
}

fn is_plain_relative(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}
