//! One compiled plugin version ([`LoadedPlugin`]) and one instance of it ([`LiveInstance`]):
//! instantiate from the cached `InstancePre` into a new `Store`, run `init`, call hooks under the
//! deadline, and turn every error into a [`FailureKind`]. A store that failed once is never
//! entered again: the caller drops the instance. Instances wait, initialised, in a small pool of
//! ready ones: with `isolation = "fresh"` spares made off the request path that have never seen a
//! request (each serves exactly one); with `"reuse"` instances that ended a request cleanly.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;
use wasmtime::component::Component;

use super::bindings::{
    Decision, Delta, EventAction, LimitsSnapshot, LlmRequest, LlmResponse, Plugin, ResponseAction,
    StreamEvent,
};
use super::config::{FailurePolicy, Isolation};
use super::error::{FailureKind, PluginFailure};
use super::host::HostState;
use super::lanes::{Linked, PluginStore};
use super::limits::{CallLimits, IdleSlot, PluginEngine, wasi};
use super::stats::PluginStats;
use super::wasi::LineBudget;

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
    /// The component imports `tenant-limits` (0.1.1): the request path reads the tenant's
    /// windows for it before the chain runs. Plugins that do not ask cost no ledger read.
    pub(crate) reads_limits: bool,
    /// Linked in each of the engine's pools (`lanes.rs`).
    linked: Linked,
    engine: Arc<PluginEngine>,
    isolation: Isolation,
    /// The component imports WASI: its calls get a wall-clock bound too.
    pub(crate) wasi: bool,
    /// Its stdout/stderr line budget (WASI plugins), over all its instances.
    output: Arc<LineBudget>,
    /// Initialised instances waiting for a request.
    ready: Mutex<Vec<Ready>>,
}

/// Most ready instances one plugin keeps.
const MAX_READY_PER_PLUGIN: usize = 16;

/// An initialised instance waiting for a request: it holds a pool slot, not a gate permit.
struct Ready {
    store: PluginStore,
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
    /// Link a compiled component against the host interface (and deny-all WASI, when it
    /// imports WASI). Fails when the component does not implement a `switchyard:plugin@0.1.x`
    /// world or imports anything else. A component built against an older 0.1 contract imports
    /// e.g. `switchyard:plugin/host@0.1.0`, which the linker resolves to the host's newer,
    /// semver-compatible definition.
    pub(crate) fn link(
        engine: &Arc<PluginEngine>,
        component: Component,
        spec: PluginSpec,
    ) -> Result<Self, String> {
        let (linked, wasi) = engine.link(&component)?;
        let reads_limits = imports_tenant_limits(engine, &component);
        Ok(Self {
            name: spec.name,
            sha256: spec.sha256,
            loaded_at: SystemTime::now(),
            policy: spec.policy,
            config_json: spec.config_json,
            limits: spec.limits,
            stats: spec.stats,
            component,
            reads_limits,
            linked,
            engine: Arc::clone(engine),
            isolation: spec.isolation,
            wasi,
            output: Arc::default(),
            ready: Mutex::new(Vec::new()),
        })
    }

    /// A failure of this plugin: logged with its name, counted, and tagged with its policy.
    pub(crate) fn failure(&self, kind: FailureKind) -> PluginFailure {
        self.stats.record_failure(&kind);
        tracing::warn!(plugin = %self.name, policy = ?self.policy, kind = kind.label(), error = %kind, "plugin failed");
        PluginFailure { plugin: Arc::clone(&self.name), kind, policy: self.policy }
    }

    /// Take an instance slot (waiting up to the queue timeout) and a ready instance, or, when none
    /// is ready, instantiate one in a fresh store and run `init` with the plugin's config. A fresh
    /// plugin also starts making a spare for a later request, which runs when this worker next
    /// waits (typically for the upstream), off this request's path.
    pub(crate) async fn start(self: &Arc<Self>) -> Result<LiveInstance, FailureKind> {
        let permit = self.engine.acquire().await?;
        let started = Instant::now();
        let (ready, room) = self.take_ready();
        if self.isolation == Isolation::Fresh && room {
            self.make_spare_later();
        }
        self.stats.record_start(ready.is_some());
        let (store, bindings) = match ready {
            Some(Ready { store, bindings, .. }) => (store, bindings),
            None => self.instantiate().await?,
        };
        Ok(LiveInstance { store, bindings, plugin: Arc::clone(self), started, _permit: permit })
    }

    /// A new instance in a new store, `init` done.
    async fn instantiate(&self) -> Result<(PluginStore, Plugin), FailureKind> {
        let state = HostState::new(
            Arc::clone(&self.name),
            Arc::clone(&self.stats),
            self.engine.memory_limiter(self.limits.memory_bytes),
            self.policy,
            Arc::clone(&self.output),
        );
        let (mut store, pre) =
            self.engine.new_store(&self.linked, state, self.isolation == Isolation::Fresh);
        self.engine.arm_deadline(&mut store, self.limits.timeout);
        let (wasi, timeout) = (self.wasi, self.limits.timeout);
        let bindings = match bounded(wasi, timeout, pre.instantiate_async(&mut *store)).await {
            Ok(bindings) => bindings,
            Err(_) if store.data().limiter.over_budget => return Err(FailureKind::Busy),
            Err(_) if store.data().limiter.hit => return Err(FailureKind::MemoryCap),
            // The deadline covers instantiation too (start functions run guest code).
            Err(e) if matches!(e.downcast_ref(), Some(wasmtime::Trap::Interrupt)) => {
                return Err(FailureKind::Timeout);
            }
            Err(e) => return Err(FailureKind::Instantiate(format!("{e:#}"))),
        };
        self.engine.arm_deadline(&mut store, self.limits.timeout);
        bounded(wasi, timeout, bindings.call_init(&mut *store, &self.config_json))
            .await
            .map_err(|e| classify(&store, e))?
            .map_err(FailureKind::PluginError)?;
        Ok((store, bindings))
    }

    /// A ready instance, if any, and whether the pool has room for another after taking it.
    fn take_ready(&self) -> (Option<Ready>, bool) {
        let Ok(mut ready) = self.ready.lock() else { return (None, false) };
        let taken = ready.pop();
        (taken, ready.len() < MAX_READY_PER_PLUGIN)
    }

    /// Keeps `instance` for a later request when there is room in this plugin's ready pool and
    /// in the engine's budget of idle slots; drops it otherwise.
    fn keep_ready(&self, store: PluginStore, bindings: Plugin) {
        let Ok(mut ready) = self.ready.lock() else { return };
        if ready.len() >= MAX_READY_PER_PLUGIN {
            return;
        }
        let Some(slot) = self.engine.reserve_idle() else { return };
        ready.push(Ready { store, bindings, _slot: slot });
    }

    /// Makes one spare fresh instance on a task of the current worker (which keeps it only if
    /// the pool still has room then).
    fn make_spare_later(self: &Arc<Self>) {
        let plugin = Arc::clone(self);
        tokio::spawn(async move {
            after_ready_work().await;
            match plugin.instantiate().await {
                Ok((store, bindings)) => plugin.keep_ready(store, bindings),
                // The next request instantiates on its own path and reports the failure.
                Err(kind) => tracing::debug!(plugin = %plugin.name, error = %kind, "no spare"),
            }
        });
    }

    /// The request is done with `live`: a reused plugin's healthy instance goes back to the ready
    /// pool (when there is room); a fresh one is dropped, with all its memory. When few warm
    /// slots are taken, on a task of the current worker after its ready work, so resetting the
    /// memory is off the request's path (one request at a time: its upstream exchange and its
    /// answer go first). When half or more are taken, at once: under load the deferred drops
    /// kept about twice as many instances alive as requests in flight, and the ones past the
    /// warm pool ran in overflow slots, with page faults (BENCHMARKS.md, "Proxy overhead").
    pub(crate) fn recycle(&self, live: LiveInstance) {
        if self.isolation == Isolation::Fresh {
            if self.engine.warm_crowded() {
                drop(live);
                return;
            }
            tokio::spawn(async move {
                after_ready_work().await;
                drop(live);
            });
            return;
        }
        let limiter = &live.store.data().limiter;
        if limiter.hit || limiter.over_budget {
            return;
        }
        let LiveInstance { store, bindings, .. } = live;
        self.keep_ready(store, bindings);
    }
}

/// Whether `component` imports `tenant-limits` from any 0.1 version of the host interface.
fn imports_tenant_limits(engine: &PluginEngine, component: &Component) -> bool {
    use wasmtime::component::types::ComponentItem;
    let engine = engine.engine();
    component.component_type().imports(engine).any(|(name, import)| {
        name.starts_with("switchyard:plugin/host@0.1")
            && matches!(&import.ty, ComponentItem::ComponentInstance(host)
                if host.get_export(engine, "tenant-limits").is_some())
    })
}

/// Lets the tasks that are ready now run first: a task spawned while a request is on its way
/// (its upstream exchange, its response) would otherwise run before the request's next step.
async fn after_ready_work() {
    tokio::task::yield_now().await;
}

/// A fresh instance of one plugin, alive for one request (and its response, if it watches it).
/// Holds an instance slot of the gate until dropped.
pub(crate) struct LiveInstance {
    store: PluginStore,
    bindings: Plugin,
    pub(crate) plugin: Arc<LoadedPlugin>,
    /// When the instance was started; the request-phase call time counts from here.
    pub(crate) started: Instant,
    _permit: OwnedSemaphorePermit,
}

impl LiveInstance {
    /// `on-request` under the plugin's deadline, with `limits` answering `tenant-limits` for
    /// this call only. On `Err` (of any hook) drop the instance.
    pub(crate) async fn on_request(
        &mut self,
        request: &LlmRequest,
        limits: Option<&LimitsSnapshot>,
    ) -> Result<Result<Decision, String>, FailureKind> {
        let (wasi, timeout) = self.arm();
        self.store.data_mut().tenant_limits = limits.cloned();
        let result =
            bounded(wasi, timeout, self.bindings.call_on_request(&mut *self.store, request)).await;
        self.store.data_mut().tenant_limits = None;
        result.map_err(|e| classify(&self.store, e))
    }

    /// `on-response` under the plugin's deadline.
    pub(crate) async fn on_response(
        &mut self,
        response: &LlmResponse,
    ) -> Result<ResponseAction, FailureKind> {
        let (wasi, timeout) = self.arm();
        let result =
            bounded(wasi, timeout, self.bindings.call_on_response(&mut *self.store, response))
                .await;
        result.map_err(|e| classify(&self.store, e))
    }

    /// `on-event` under the plugin's deadline.
    pub(crate) async fn on_event(
        &mut self,
        event: &StreamEvent,
    ) -> Result<EventAction, FailureKind> {
        let (wasi, timeout) = self.arm();
        let result =
            bounded(wasi, timeout, self.bindings.call_on_event(&mut *self.store, event)).await;
        result.map_err(|e| classify(&self.store, e))
    }

    /// `on-stream-end` under the plugin's deadline.
    pub(crate) async fn on_stream_end(&mut self) -> Result<Vec<Delta>, FailureKind> {
        let (wasi, timeout) = self.arm();
        let result =
            bounded(wasi, timeout, self.bindings.call_on_stream_end(&mut *self.store)).await;
        result.map_err(|e| classify(&self.store, e))
    }

    /// Arms the call's deadline; gives what [`bounded`] needs.
    fn arm(&mut self) -> (bool, Duration) {
        self.plugin.engine.arm_deadline(&mut self.store, self.plugin.limits.timeout);
        (self.plugin.wasi, self.plugin.limits.timeout)
    }
}

/// Runs one call. A WASI plugin's call is bounded in wall time too: blocked in a host call (a
/// sleep, a poll) it runs no guest code, so the epoch deadline cannot stop it. Dropping the call
/// at the bound unwinds it; the store, failed, is dropped by the caller.
async fn bounded<T>(
    wasi: bool,
    timeout: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    if !wasi {
        return call.await;
    }
    match tokio::time::timeout(wasi::wall_deadline(timeout), call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Trap::Interrupt.into()),
    }
}

/// What a failed call on `store` was: the memory cap, the deadline, or a trap.
fn classify(store: &Store<HostState>, err: wasmtime::Error) -> FailureKind {
    if store.data().limiter.over_budget {
        return FailureKind::Busy;
    }
    if store.data().limiter.hit {
        return FailureKind::MemoryCap;
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FailureKind::Timeout,
        Some(trap) => FailureKind::Trap(trap.to_string()),
        None => FailureKind::Trap(format!("{err:#}")),
    }
}
