//! Hot swap: the live [`PluginSet`] behind an `ArcSwap`, and the only way to change it: read
//! (and signature-check) the files, compile off the request path, probe each new plugin with a
//! synthetic request, then swap the whole set at once. Any failure keeps the old set and says why.
//! Requests in flight finish on the set they started with.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::artifacts::{ArtifactCache, Origin};
use super::bindings::{LlmRequest, Message};
use super::chain::{PluginSet, run_one};
use super::config::{self, PluginEntry, PluginsSection};
use super::error::{FailureKind, LoadError};
use super::instance::{LoadedPlugin, PluginSpec};
use super::limits::{self, CallLimits, PluginEngine};
use super::signature;
use super::stats::PluginStats;

/// The tag every probe request carries, so a plugin can recognise it.
pub const PROBE_TAG: &str = "switchyard.probe";

/// Owns the live plugin set and every change to it.
pub struct PluginRegistry {
    engine: Arc<PluginEngine>,
    current: ArcSwap<PluginSet>,
    /// Serialises reloads; holds the config the next reload uses.
    config: tokio::sync::Mutex<ChainConfig>,
    /// Stats per plugin name, kept across versions.
    stats: Mutex<HashMap<String, Arc<PluginStats>>>,
    /// With `trusted_keys`: per plugin name, the highest signed version that went live since
    /// start and its sha256. An older version is a rollback and refused; the same version with
    /// other bytes too.
    signed_floor: Mutex<HashMap<String, (u64, String)>>,
    /// Compiled code of earlier loads (`plugins.artifact_cache`), when configured and usable.
    artifacts: Option<Arc<ArtifactCache>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("generation", &self.current.load().generation)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct ChainConfig {
    section: PluginsSection,
    entries: Vec<PluginEntry>,
    upstreams: BTreeSet<String>,
}

/// What a successful (re)load did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// The generation now live.
    pub generation: u64,
    /// The chain, in order.
    pub plugins: Vec<String>,
    /// Plugins compiled anew (the others were unchanged and reused).
    pub compiled: Vec<String>,
    /// From the start of the reload until the new set was live.
    pub took_ms: f64,
}

/// One plugin as `GET /admin/plugins` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub sha256: String,
    pub loaded_at_unix_ms: u64,
    pub failure: &'static str,
    pub calls: u64,
    /// Requests whose instance was waiting initialised (a spare, or a reused instance).
    pub ready_starts: u64,
    /// Requests that instantiated and initialised their instance on their own path.
    pub new_starts: u64,
    pub failures: u64,
    pub failures_by_kind: HashMap<&'static str, u64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// The plugin's own counters (`counter-add`).
    pub counters: std::collections::BTreeMap<String, u64>,
}

impl PluginRegistry {
    /// A registry with an empty chain; call [`PluginRegistry::reload`] to load the configured
    /// plugins. `upstreams` are the names routes and escalations may use. The config should have
    /// passed [`config::validate`]; it is checked again here.
    pub fn new(
        engine: Arc<PluginEngine>,
        section: PluginsSection,
        entries: Vec<PluginEntry>,
        upstreams: BTreeSet<String>,
    ) -> Self {
        let artifacts = section.artifact_cache.as_deref().and_then(|dir| {
            ArtifactCache::open(dir, engine.engine())
                .map_err(|e| tracing::warn!(error = %e, "plugin artifact cache off; every load compiles"))
                .ok()
                .map(Arc::new)
        });
        Self {
            artifacts,
            current: ArcSwap::from_pointee(PluginSet::empty(upstreams.clone())),
            engine,
            config: tokio::sync::Mutex::new(ChainConfig { section, entries, upstreams }),
            stats: Mutex::new(HashMap::new()),
            signed_floor: Mutex::default(),
        }
    }

    /// The live set. Hold the `Arc` for the whole request (response phase included).
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    /// Re-read every plugin file with the current config (file watcher, `POST /admin/reload`).
    pub async fn reload(&self) -> Result<ReloadReport, LoadError> {
        let cfg = self.config.lock().await;
        self.rebuild(&cfg, None).await
    }

    /// Load a new config (proxy config reload). On failure the old config and set stay.
    pub async fn reconfigure(
        &self,
        section: PluginsSection,
        entries: Vec<PluginEntry>,
        upstreams: BTreeSet<String>,
    ) -> Result<ReloadReport, LoadError> {
        let mut cfg = self.config.lock().await;
        let next = ChainConfig { section, entries, upstreams };
        let report = self.rebuild(&next, None).await?;
        *cfg = next;
        Ok(report)
    }

    /// Replace one configured plugin's file with uploaded bytes (`PUT /admin/plugins/{name}`):
    /// checked, compiled and probed before anything is written; then the file (and signature) is
    /// written atomically into `plugins.dir` and the set swapped.
    pub async fn install(
        &self,
        name: &str,
        wasm: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> Result<ReloadReport, LoadError> {
        let cfg = self.config.lock().await;
        let entry = cfg
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| LoadError::UnknownPlugin(name.to_string()))?;
        let upload = Upload { name, wasm: &wasm, signature: signature.as_deref() };
        let prepared = self.prepare(&cfg, Some(upload)).await?;
        let path = cfg.section.dir.join(&entry.file);
        let write = |p: &Path, bytes: &[u8]| -> Result<(), LoadError> {
            let tmp = p.with_extension("tmp-upload");
            std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, p)).map_err(|source| {
                LoadError::Read { plugin: name.to_string(), path: p.display().to_string(), source }
            })
        };
        // Written first, then live: a crash or a full disk never leaves a live plugin that a
        // restart or the directory watcher would not load again.
        if let Some(sig) = &signature {
            write(&sig_path(&path), sig)?;
        }
        write(&path, &wasm)?;
        Ok(self.publish(prepared))
    }

    /// Every plugin of the live set with its numbers, in chain order.
    pub fn list(&self) -> Vec<PluginInfo> {
        let set = self.current();
        set.plugins
            .iter()
            .map(|p| PluginInfo {
                name: p.name.to_string(),
                sha256: p.sha256.clone(),
                loaded_at_unix_ms: p
                    .loaded_at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                failure: match p.policy {
                    config::FailurePolicy::Closed => "closed",
                    config::FailurePolicy::Open => "open",
                },
                calls: p.stats.calls(),
                ready_starts: p.stats.starts().0,
                new_starts: p.stats.starts().1,
                failures: p.stats.failures(),
                failures_by_kind: p.stats.failures_by_kind().into_iter().collect(),
                p50_us: p.stats.quantile(0.5).map(micros),
                p99_us: p.stats.quantile(0.99).map(micros),
                counters: p.stats.counters(),
            })
            .collect()
    }

    /// The stats of a plugin name (alive across versions), for /metrics.
    pub fn stats(&self, name: &str) -> Option<Arc<PluginStats>> {
        self.stats.lock().ok()?.get(name).cloned()
    }

    async fn rebuild(
        &self,
        cfg: &ChainConfig,
        upload: Option<Upload<'_>>,
    ) -> Result<ReloadReport, LoadError> {
        let prepared = self.prepare(cfg, upload).await?;
        Ok(self.publish(prepared))
    }

    /// Makes the new set live.
    fn publish(&self, prepared: Prepared) -> ReloadReport {
        let Prepared { set, report, signed } = prepared;
        self.current.store(Arc::new(set));
        if let Ok(mut floor) = self.signed_floor.lock() {
            floor.extend(signed);
        }
        let generation = report.generation;
        tracing::info!(generation, took_ms = report.took_ms, compiled = ?report.compiled, "plugin set live");
        report
    }

    /// The signed version of `name`, refused if it would roll back what already ran.
    fn check_rollback(&self, name: &str, version: u64, sha256: &str) -> Result<(), String> {
        let floor = self.signed_floor.lock().map_err(|_| "signature state poisoned".to_string())?;
        match floor.get(name) {
            Some((live, _)) if version < *live => Err(format!(
                "version {version} is older than version {live}, which already ran (rollback)"
            )),
            Some((live, sha)) if version == *live && sha != sha256 => Err(format!(
                "version {version} was already signed for other bytes; sign a new version"
            )),
            _ => Ok(()),
        }
    }

    /// Compiles and probes a new set from `cfg` (and an upload), without making it live.
    async fn prepare(
        &self,
        cfg: &ChainConfig,
        upload: Option<Upload<'_>>,
    ) -> Result<Prepared, LoadError> {
        let started = Instant::now();
        let problems = config::validate(&cfg.section, &cfg.entries);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(LoadError::Config(list.join("; ")));
        }
        let old = self.current();
        let upstreams = Arc::new(cfg.upstreams.clone());
        let mut plugins = Vec::with_capacity(cfg.entries.len());
        let mut compiled = Vec::new();
        let mut signed = Vec::new();
        for entry in &cfg.entries {
            let source = read_source(&cfg.section, entry, upload.as_ref())?;
            let sha256 = hex(&Sha256::digest(&source.wasm));
            if !cfg.section.trusted_keys.is_empty() {
                let refused = |reason| LoadError::Signature { plugin: entry.name.clone(), reason };
                let version = signature::verify(
                    &entry.name,
                    &source.wasm,
                    source.signature.as_deref(),
                    &cfg.section.trusted_keys,
                )
                .map_err(refused)?;
                self.check_rollback(&entry.name, version, &sha256).map_err(refused)?;
                signed.push((entry.name.clone(), (version, sha256.clone())));
            }
            // Same bytes as a live plugin: reuse its compiled code (config may still differ).
            let reuse = old.plugins.iter().find(|p| p.sha256 == sha256);
            let component = match reuse {
                Some(p) => p.component.clone(),
                None => {
                    compiled.push(entry.name.clone());
                    self.compile(&entry.name, source.wasm, &sha256).await?
                }
            };
            let spec = PluginSpec {
                name: Arc::from(entry.name.as_str()),
                sha256,
                policy: entry.failure,
                config_json: entry.config_json(),
                limits: CallLimits {
                    timeout: Duration::from_millis(entry.timeout_ms),
                    memory_bytes: memory_cap(&cfg.section, entry, &component)?,
                },
                stats: self.stats_for(&entry.name),
                isolation: entry.isolation,
            };
            let plugin = LoadedPlugin::link(&self.engine, component, spec)
                .map_err(|reason| LoadError::Compile { plugin: entry.name.clone(), reason })?;
            let plugin = Arc::new(plugin);
            probe(&plugin, &upstreams).await?;
            plugins.push(plugin);
        }
        let generation = old.generation + 1;
        let names = plugins.iter().map(|p| p.name.to_string()).collect();
        let report = ReloadReport {
            generation,
            plugins: names,
            compiled,
            took_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        Ok(Prepared { set: PluginSet { plugins, upstreams, generation }, report, signed })
    }

    /// Compile on a blocking thread: Cranelift takes tens of ms for a Rust plugin and seconds
    /// for an interpreter's. With the artifact cache, known bytes load instead, and the functions
    /// earlier compiles made are reused (the compiled-function cache).
    async fn compile(
        &self,
        name: &str,
        wasm: Vec<u8>,
        sha256: &str,
    ) -> Result<Component, LoadError> {
        let engine = Arc::clone(&self.engine);
        let (artifacts, sha256, plugin) =
            (self.artifacts.clone(), sha256.to_string(), name.to_string());
        tokio::task::spawn_blocking(move || match artifacts {
            Some(cache) => {
                let functions = engine.function_cache();
                let before = functions.map(|f| f.stats());
                let (component, origin) = cache.load_or_compile(engine.engine(), &wasm, &sha256)?;
                if let (Origin::Compiled, Some(functions), Some(before)) =
                    (origin, functions, before)
                {
                    let now = functions.stats();
                    // Only new entries can take the directory past its cap.
                    if now.stored > before.stored {
                        functions.prune();
                    }
                    // Engine-wide counts: compiles running at once share them.
                    tracing::info!(
                        plugin,
                        functions_reused = now.hits - before.hits,
                        functions_compiled = now.stored - before.stored,
                        "plugin compiled"
                    );
                }
                Ok(component)
            }
            None => Component::new(engine.engine(), &wasm),
        })
        .await
        .map_err(|e| LoadError::Join(e.to_string()))?
        .map_err(|e| LoadError::Compile { plugin: name.to_string(), reason: format!("{e:#}") })
    }

    fn stats_for(&self, name: &str) -> Arc<PluginStats> {
        match self.stats.lock() {
            Ok(mut map) => Arc::clone(map.entry(name.to_string()).or_default()),
            Err(_) => Arc::default(),
        }
    }
}

/// Loads every configured plugin as a start does (read, signature check, compile, probe) and
/// serves nothing: what `switchyard check` runs, so that a plugin that cannot start (its memory
/// cap too small, an import the host does not offer) is reported before a deploy.
pub async fn check(
    section: &PluginsSection,
    entries: &[PluginEntry],
    upstreams: BTreeSet<String>,
) -> Result<ReloadReport, LoadError> {
    let engine = PluginEngine::new(section.engine_limits()).map_err(LoadError::Config)?;
    PluginRegistry::new(engine, section.clone(), entries.to_vec(), upstreams).reload().await
}

/// The memory cap of `entry`'s instances: its `memory_mib`, or when unset what the component's
/// memory starts at plus headroom. A cap below the start is refused here, with the size to set,
/// rather than as an anonymous instantiation failure on every request.
fn memory_cap(
    section: &PluginsSection,
    entry: &PluginEntry,
    component: &Component,
) -> Result<usize, LoadError> {
    let max = (section.max_memory_mib as usize) << 20;
    let initial = limits::initial_memory_bytes(component).unwrap_or(0);
    let cap = match entry.memory_mib {
        Some(mib) => (mib as usize) << 20,
        None => limits::auto_memory_bytes(initial).min(max),
    };
    if initial <= cap {
        return Ok(cap);
    }
    let mib = |bytes: usize| bytes.div_ceil(1 << 20);
    Err(LoadError::Memory {
        plugin: entry.name.clone(),
        needs_mib: mib(initial),
        cap_mib: mib(cap),
        suggest_mib: mib(limits::auto_memory_bytes(initial)),
        max_memory_mib: section.max_memory_mib,
    })
}

/// A compiled and probed set that is not live yet.
struct Prepared {
    set: PluginSet,
    report: ReloadReport,
    /// Signed versions in it, for the rollback floor once it is live.
    signed: Vec<(String, (u64, String))>,
}

/// Uploaded bytes that replace one plugin's file in this rebuild.
struct Upload<'a> {
    name: &'a str,
    wasm: &'a [u8],
    signature: Option<&'a [u8]>,
}

struct Source {
    wasm: Vec<u8>,
    signature: Option<Vec<u8>>,
}

fn read_source(
    section: &PluginsSection,
    entry: &PluginEntry,
    upload: Option<&Upload<'_>>,
) -> Result<Source, LoadError> {
    if let Some(u) = upload.filter(|u| u.name == entry.name) {
        return Ok(Source { wasm: u.wasm.to_vec(), signature: u.signature.map(<[u8]>::to_vec) });
    }
    let path = section.dir.join(&entry.file);
    let wasm = std::fs::read(&path).map_err(|source| LoadError::Read {
        plugin: entry.name.clone(),
        path: path.display().to_string(),
        source,
    })?;
    let signature = std::fs::read(sig_path(&path)).ok();
    Ok(Source { wasm, signature })
}

/// `plugin.wasm` -> `plugin.wasm.sig`.
pub fn sig_path(wasm: &Path) -> std::path::PathBuf {
    let mut s = wasm.as_os_str().to_owned();
    s.push(".sig");
    s.into()
}

/// How many times the probe runs before a missed deadline refuses the plugin.
const PROBE_TRIES: usize = 3;

/// Run the probe request through a new plugin: init with its config, on-request, validation.
/// The probe checks that a plugin works, not how fast this machine is at the moment: a missed
/// deadline (a swap compiling beside full traffic on a loaded host once made tier-router's probe
/// miss its 20 ms while another plugin was swapped, and the whole swap was refused) is tried
/// again, up to [`PROBE_TRIES`] calls. A plugin that misses every one (a loop) is refused; any
/// other failure is refused at once.
async fn probe(plugin: &Arc<LoadedPlugin>, upstreams: &BTreeSet<String>) -> Result<(), LoadError> {
    let fail = |failure: FailureKind| LoadError::Probe { plugin: plugin.name.to_string(), failure };
    let mut tries = 1;
    loop {
        match run_one(plugin, &probe_request(), None, upstreams).await {
            Ok(_) => return Ok(()),
            Err(f) if matches!(f.kind, FailureKind::Timeout) && tries < PROBE_TRIES => tries += 1,
            Err(f) => return Err(fail(f.kind)),
        }
    }
}

/// The synthetic request every new plugin must handle without failing. Its text has multi-byte
/// characters so that edits off char boundaries show up.
pub fn probe_request() -> LlmRequest {
    let msg = |role: &str, content: &str| Message { role: role.into(), content: content.into() };
    LlmRequest {
        endpoint: "/v1/chat/completions".into(),
        model: Some("switchyard-probe".into()),
        stream: false,
        messages: vec![
            msg("system", "You are a probe."),
            msg("user", "héllo wörld, this is a Switchyard probe: 42"),
        ],
        params_json: "{}".into(),
        tenant: None,
        headers: Vec::new(),
        tags: vec![(PROBE_TAG.into(), "1".into())],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<PluginRegistry>();
    is::<SystemTime>();
}
