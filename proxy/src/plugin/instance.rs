//! One compiled plugin version ([`LoadedPlugin`]) and one instance of it ([`LiveInstance`]):
//! instantiate from the cached `InstancePre` into a new `Store`, run `init`, call hooks under the
//! deadline, and turn every error into a [`FailureKind`]. A store that failed once is never
//! entered again: the caller drops the instance. With `isolation = "reuse"`, instances that ended
//! their request cleanly wait in a small idle pool for the next request instead.

use std::sync::Mutex;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{Plugin, PluginPre};
use super::config::{FailurePolicy, Isolation};
use super::error::{FailureKind, PluginFailure};
use super::host::HostState;
use super::limits::{CallLimits, IdleSlot, PluginEngine};
use super::stats::PluginStats;

/// One compiled plugin version, ready to instantiate. Shared by every request of its set.
pub struct LoadedPlugin {
    pub(crate) name: Arc<str>,
    pub(crate) sha256: String,
    pub(crate) loaded_at: SystemTime,
    pub(crate) policy: FailurePolicy,
    pub(crate) config_json: String,
    pub(crate) limits: CallLimits,
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) component: Component,
    pre: PluginPre<HostState>,
    engine: Arc<PluginEngine>,
    isolation: Isolation,
    /// Initialised instances waiting for a request (`isolation = "reuse"` only).
    idle: Mutex<Vec<Idle>>,
}

/// Most idle instances one reused plugin keeps.
const MAX_IDLE_PER_PLUGIN: usize = 16;

/// An initialised instance between two requests: it holds a pool slot, not a gate permit.
struct Idle {
    store: Store<HostState>,
    bindings: Plugin,
    _slot: IdleSlot,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Everything needed to make a [`LoadedPlugin`] from a compiled component.
pub(crate) struct PluginSpec {
    pub(crate) name: Arc<str>,
    pub(crate) sha256: String,
    pub(crate) policy: FailurePolicy,
    pub(crate) config_json: String,
    pub(crate) limits: CallLimits,
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) isolation: Isolation,
}

impl LoadedPlugin {
    /// Link a compiled component against the host interface. Fails when the component does not
    /// implement the `switchyard:plugin@0.1.0` world or imports anything else.
    pub(crate) fn link(
        engine: &Arc<PluginEngine>,
        component: Component,
        spec: PluginSpec,
    ) -> Result<Self, String> {
        let pre = engine
            .linker()
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            name: spec.name,
            sha256: spec.sha256,
            loaded_at: SystemTime::now(),
            policy: spec.policy,
            config_json: spec.config_json,
            limits: spec.limits,
            stats: spec.stats,
            component,
            pre,
            engine: Arc::clone(engine),
            isolation: spec.isolation,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// A failure of this plugin: logged with its name, counted, and tagged with its policy.
    pub(crate) fn failure(&self, kind: FailureKind) -> PluginFailure {
        self.stats.record_failure(&kind);
        tracing::warn!(plugin = %self.name, policy = ?self.policy, kind = kind.label(), error = %kind, "plugin failed");
        PluginFailure { plugin: Arc::clone(&self.name), kind, policy: self.policy }
    }

    /// Take an instance slot (waiting up to the queue timeout), instantiate a fresh instance in
    /// a fresh store, and run `init` with the plugin's config. A reused plugin takes an idle
    /// instance instead when it has one.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<LiveInstance, FailureKind> {
        let permit = self.engine.acquire().await?;
        let started = Instant::now();
        if let Some(idle) = self.take_idle() {
            let Idle { store, bindings, .. } = idle;
            let plugin = Arc::clone(self);
            return Ok(LiveInstance { store, bindings, plugin, started, _permit: permit });
        }
        let state = HostState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.stats),
            self.limits.memory_bytes,
        );
        let mut store = self.engine.new_store(state);
        self.engine.arm_deadline(&mut store, self.limits.timeout);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| FailureKind::Instantiate(format!("{e:#}")))?;
        let mut live =
            LiveInstance { store, bindings, plugin: Arc::clone(self), started, _permit: permit };
        let config = &self.config_json;
        live.call(|b, s| b.call_init(s, config))?.map_err(FailureKind::PluginError)?;
        Ok(live)
    }
}

impl LoadedPlugin {
    fn take_idle(&self) -> Option<Idle> {
        if self.isolation != Isolation::Reuse {
            return None;
        }
        self.idle.lock().ok()?.pop()
    }

    /// The request is done with `live`: a reused plugin's healthy instance goes back to the idle
    /// pool (when there is room), any other instance is dropped with all its memory.
    pub(crate) fn recycle(&self, live: LiveInstance) {
        if self.isolation != Isolation::Reuse || live.store.data().limiter.hit {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else { return };
        if idle.len() >= MAX_IDLE_PER_PLUGIN {
            return;
        }
        let Some(slot) = self.engine.reserve_idle() else { return };
        let LiveInstance { store, bindings, .. } = live;
        idle.push(Idle { store, bindings, _slot: slot });
    }
}

/// A fresh instance of one plugin, alive for one request (and its response, if it watches it).
/// Holds an instance slot of the gate until dropped.
pub(crate) struct LiveInstance {
    store: Store<HostState>,
    bindings: Plugin,
    pub(crate) plugin: Arc<LoadedPlugin>,
    /// When the instance was started; the request-phase call time counts from here.
    pub(crate) started: Instant,
    _permit: OwnedSemaphorePermit,
}

impl LiveInstance {
    /// Call one hook under the plugin's deadline. On `Err` the instance must be dropped.
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, FailureKind> {
        self.plugin.engine.arm_deadline(&mut self.store, self.plugin.limits.timeout);
        f(&self.bindings, &mut self.store).map_err(|e| self.classify(e))
    }

    fn classify(&self, err: wasmtime::Error) -> FailureKind {
        if self.store.data().limiter.hit {
            return FailureKind::MemoryCap;
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
            Some(trap) => FailureKind::Trap(trap.to_string()),
            None => FailureKind::Trap(format!("{err:#}")),
        }
    }
}
