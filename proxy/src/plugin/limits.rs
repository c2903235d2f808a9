//! Every sandbox limit in one place: the pooling allocator (bounded instances and memories), the
//! run-time deadline of each call (epoch ticks, with a yield to the worker's event loop at each
//! tick) and the ticker thread that drives it, the memory cap of each store and the memory budget
//! of all of them, the bound on concurrent instances (wait, then busy), and the size bounds on
//! decisions. Plugins also get no ambient capabilities: the linker offers only the `host`
//! interface, plus, for components that import it, WASI with every capability denied (`wasi.rs`)
//! and the bounds of what it does allow ([`wasi`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, UpdateDeadline,
};

use super::bindings::PluginPre;
use super::error::FailureKind;
use super::function_cache::FunctionCache;
use super::host::HostState;
use super::lanes::{Lane, Lanes, Linked, PluginStore};
use wasmtime::component::Component;

/// The longest deadline a plugin may configure.
pub const MAX_TIMEOUT_MS: u64 = 1000;

/// Size bounds on one decision: anything larger is an invalid decision.
pub mod decision {
    /// Text edits in one decision.
    pub const MAX_EDITS: usize = 4096;
    /// Bytes of replacement text in one decision, all edits together.
    pub const MAX_REPLACEMENT_BYTES: usize = 1 << 20;
    /// Headers added by one decision, and the bytes of one header.
    pub const MAX_HEADERS: usize = 32;
    pub const MAX_HEADER_BYTES: usize = 8 << 10;
    /// Tags set by one decision, and the bytes of one tag (key + value).
    pub const MAX_TAGS: usize = 64;
    pub const MAX_TAG_BYTES: usize = 1 << 10;
    /// Fallback upstreams of one route.
    pub const MAX_FALLBACKS: usize = 8;
    /// Bytes of a model name, an error message, a reason.
    pub const MAX_NAME_BYTES: usize = 1 << 10;
    /// Bytes of a cache key. Keys may hold the whole request (the host keeps only a sha256 of
    /// tenant, endpoint and key), so this bound is the instance memory's, not a name's.
    pub const MAX_CACHE_KEY_BYTES: usize = 16 << 20;
    /// Bytes of a reply body (completion text or raw body).
    pub const MAX_BODY_BYTES: usize = 1 << 20;
    /// Longest cache TTL.
    pub const MAX_TTL_SECONDS: u32 = 30 * 24 * 3600;
}

/// What one component may hold, so that those of today's toolchains fit a pool slot: wit-component
/// wraps a Rust plugin into 1 to 4 core instances, componentize-py makes 14 (CPython, its libraries
/// and the WASI adapter, dynamically linked). The other bounds were raised from the pool's
/// defaults with room to spare and are proven sufficient by tests/tests/polyglot_plugins.rs, which
/// loads a componentize-js and a componentize-py component through this pool.
pub mod component {
    /// Core module instances of one component.
    pub const MAX_CORE_INSTANCES: u32 = 20;
    /// Linear memories of one component.
    pub const MAX_MEMORIES: u32 = 2;
    /// Tables of one component.
    pub const MAX_TABLES: u32 = 8;
    /// Elements of one table (wasmtime's default is 20,000; an interpreter's function table is
    /// large).
    pub const MAX_TABLE_ELEMENTS: usize = 65_536;
    /// Bytes of one core instance's `VMContext` (functions, globals, imports; wasmtime's default
    /// is 1 MiB).
    pub const MAX_CORE_INSTANCE_BYTES: usize = 4 << 20;
}

/// Bounds on what WASI does allow a plugin that imports it (see `wasi.rs`: everything else is
/// denied).
pub mod wasi {
    use std::time::Duration;

    /// Resources (streams, pollables, ...) one store's WASI may hold at once.
    pub const MAX_RESOURCES: usize = 1024;
    /// Bytes one `get-random-bytes` call may ask for (a larger call traps).
    pub const MAX_RANDOM_BYTES: u64 = 1 << 20;
    /// Bytes of one stdout/stderr line that reach the log; the rest of the line is cut.
    pub const MAX_LINE_BYTES: usize = 1024;
    /// Bytes the guest may hand stdout/stderr in one write (what `check-write` grants).
    pub const MAX_WRITE_BYTES: usize = 64 << 10;
    /// stdout/stderr lines per second one plugin (all its instances) may log, and the burst
    /// allowed above that rate. Lines past them are dropped and counted on the next line logged.
    pub const LINES_PER_SECOND: u32 = 20;
    pub const LINE_BURST: u32 = 100;
    /// A call blocked in a WASI host call (a sleep, a poll) runs no guest code, so no epoch
    /// tick can stop it: its wall time is bounded too, at this multiple of its deadline (time
    /// yielded to other connections counts here, hence the margin), and at least
    /// [`MIN_WALL_DEADLINE`].
    pub const WALL_DEADLINE_FACTOR: u32 = 10;
    pub const MIN_WALL_DEADLINE: Duration = Duration::from_millis(250);

    /// The wall-clock bound of one call whose run-time budget is `timeout`.
    pub fn wall_deadline(timeout: Duration) -> Duration {
        timeout.saturating_mul(WALL_DEADLINE_FACTOR).max(MIN_WALL_DEADLINE)
    }
}

/// Engine-wide limits. Per-plugin limits (deadline, memory cap) are in [`CallLimits`].
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Most component instances alive at once (pool slots, and the permits of the gate).
    pub max_instances: u32,
    /// How long a caller waits for a free instance before it gets [`FailureKind::Busy`].
    pub queue_timeout: Duration,
    /// Largest linear memory any instance may have (pool slot size).
    pub max_memory_bytes: usize,
    /// Period of the epoch ticker; deadlines are rounded up to whole ticks.
    pub epoch_tick: Duration,
    /// Stores that may hold a warm pool slot at once (`lanes.rs`): a warm slot keeps up to
    /// `keep_resident_bytes` of the pages its instance wrote, reset by a copy, so the next
    /// instance there takes no page faults. Stores beyond it get slots that give every page back.
    pub resident_instances: u32,
    /// Bytes of written pages a warm slot keeps (wasmtime's `linear_memory_keep_resident`). At
    /// most `resident_instances × keep_resident_bytes` stay resident once the proxy is idle.
    pub keep_resident_bytes: usize,
    /// Linear memory of all instances together. A `memory.grow` (or an instantiation) past it is
    /// refused and the call fails as busy: the runtime is saturated, not the plugin broken.
    pub memory_budget_bytes: usize,
    /// Directory of Cranelift's compiled functions ([`FunctionCache`]); none: every compile
    /// starts from nothing.
    pub function_cache: Option<std::path::PathBuf>,
    /// Write `/tmp/perf-<pid>.map` (wasmtime's perf map) so that `perf` names the plugins'
    /// compiled functions. For profiling only: the file tells local users where code lives.
    pub perf_map: bool,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances: default_max_instances(),
            queue_timeout: Duration::from_millis(50),
            max_memory_bytes: 64 << 20,
            epoch_tick: Duration::from_millis(1),
            // Room to spare for the default chain (pii-redact writes less than 64 KiB per
            // request); a slot that keeps less than its plugin writes pays both a copy and page
            // faults. pii-redact watches every answer, so one of its instances is alive per
            // request in flight: 128 covers 64 busy connections with their spares, where 64
            // sent a third of them to the overflow pool (BENCHMARKS.md, "Proxy overhead").
            resident_instances: 128,
            keep_resident_bytes: 1 << 20,
            memory_budget_bytes: 8 << 30,
            function_cache: None,
            perf_map: false,
        }
    }
}

/// Pool slots set aside for idle instances of `isolation = "reuse"` plugins (and fresh spares),
/// beyond the live instances' `max_instances`.
const IDLE_SLOTS: u32 = 256;

/// Limits of one plugin's calls.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Deadline of each call (init, on-request, each response hook).
    pub timeout: Duration,
    /// Memory cap of the instance.
    pub memory_bytes: usize,
}

/// The wasmtime engine with every limit applied, the linkers (the host interface; the host
/// interface and deny-all WASI), the instance gate and the epoch ticker. One per proxy; shared
/// by all plugin sets.
pub struct PluginEngine {
    /// The warm and the overflow pool, each an engine with its linkers (`lanes.rs`).
    lanes: Lanes,
    limits: EngineLimits,
    gate: Arc<Semaphore>,
    /// Idle instances kept for reuse, over all plugins; at most [`IDLE_SLOTS`].
    idle: Arc<AtomicUsize>,
    /// Bytes of linear memory all stores hold together (see `memory_budget_bytes`).
    memory_used: Arc<AtomicUsize>,
    ticker: Ticker,
    functions: Option<Arc<FunctionCache>>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").field("limits", &self.limits).finish()
    }
}

impl PluginEngine {
    /// Build the engine, the linker and the ticker thread.
    pub fn new(limits: EngineLimits) -> Result<Arc<Self>, String> {
        // Slots for the live instances (as many as the gate's permits) and for idle instances of
        // `isolation = "reuse"` plugins, which hold a slot but no permit.
        let n = limits.max_instances.saturating_add(IDLE_SLOTS);
        let keep = if limits.resident_instances == 0 { 0 } else { limits.keep_resident_bytes };
        let warm_slots = if keep == 0 { n } else { limits.resident_instances.min(n) };
        let functions = limits.function_cache.as_deref().and_then(|dir| {
            FunctionCache::open(dir)
                .map_err(|e| tracing::warn!(error = %e, "compiled-function cache off"))
                .ok()
                .map(Arc::new)
        });
        // Both pools reset the same way; `/proc/swaps` is read once.
        let scan = pagemap_scan();
        let mut warm = engine_config(&limits, warm_slots, keep, scan);
        if let Some(cache) = &functions {
            warm.enable_incremental_compilation(cache.clone())
                .map_err(|e| format!("wasmtime function cache: {e}"))?;
        }
        let overflow = if warm_slots < n {
            Some(Lane::new(&engine_config(&limits, n, 0, scan))?)
        } else {
            None
        };
        let lanes = Lanes::new(Lane::new(&warm)?, overflow, warm_slots);
        warn_if_mappings_short(limits.max_instances);
        let ticker = Ticker::start(lanes.engines(), limits.epoch_tick)?;
        Ok(Arc::new(Self {
            lanes,
            gate: Arc::new(Semaphore::new(limits.max_instances as usize)),
            idle: Arc::new(AtomicUsize::new(0)),
            memory_used: Arc::new(AtomicUsize::new(0)),
            limits,
            ticker,
            functions,
        }))
    }

    /// The engine plugins are compiled in (the warm lane's).
    pub fn engine(&self) -> &Engine {
        self.lanes.warm().engine()
    }

    /// The compiled-function cache, when [`EngineLimits::function_cache`] named one.
    pub fn function_cache(&self) -> Option<&FunctionCache> {
        self.functions.as_deref()
    }

    /// Links `component` in every lane, with WASI only when it imports a `wasi:` interface, so
    /// that other plugins keep a linker that offers nothing but the host interface. Either way
    /// an import that the linker does not offer fails the link, and the plugin is refused.
    /// Returns whether it imports WASI.
    pub(crate) fn link(&self, component: &Component) -> Result<(Linked, bool), String> {
        let wasi = imports_wasi(self.engine(), component);
        Ok((self.lanes.link(component, wasi)?, wasi))
    }

    /// Whether half or more of the warm pool slots are taken (`lanes.rs`).
    pub(crate) fn warm_crowded(&self) -> bool {
        self.lanes.warm_crowded()
    }

    /// Stores in warm pool slots right now (`lanes.rs`).
    pub fn warm_instances(&self) -> usize {
        self.lanes.warm_alive()
    }

    /// Bytes the free pool slots of every lane keep resident (wasmtime's count of the written
    /// pages that freed memories keep).
    pub fn idle_resident_bytes(&self) -> usize {
        self.lanes
            .engines()
            .filter_map(Engine::pooling_allocator_metrics)
            .map(|m| m.unused_memory_bytes_resident())
            .sum()
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    /// Wait (up to `queue_timeout`) for a free instance slot. Hold the permit for as long as the
    /// instance lives: the gate has exactly as many permits as the pool has instance slots, so the
    /// pool itself never refuses.
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, FailureKind> {
        let gate = Arc::clone(&self.gate);
        // Fast path without a timer: a free slot is the common case.
        if let Ok(permit) = Arc::clone(&gate).try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.limits.queue_timeout, gate.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(FailureKind::Busy),
        }
    }

    /// Reserves one of the pool slots set aside for idle instances; `None` when all are taken.
    pub(crate) fn reserve_idle(&self) -> Option<IdleSlot> {
        let max = IDLE_SLOTS as usize;
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| IdleSlot { idle: Arc::clone(&self.idle) })
    }

    /// Instance slots free right now (for /metrics).
    pub fn free_instances(&self) -> usize {
        self.gate.available_permits()
    }

    /// A memory limiter for one store: its own cap, and its share of the engine's budget.
    pub(crate) fn memory_limiter(&self, cap: usize) -> MemoryLimiter {
        MemoryLimiter {
            cap,
            hit: false,
            over_budget: false,
            held: 0,
            budget: self.limits.memory_budget_bytes,
            used: Arc::clone(&self.memory_used),
        }
    }

    /// Bytes of linear memory all instances hold right now (for /metrics and benchmarks).
    pub fn memory_in_use(&self) -> usize {
        self.memory_used.load(Ordering::Relaxed)
    }

    /// A fresh store for one plugin instance, with its memory cap installed and its calls'
    /// deadline driven by the epoch: at each tick a running call either yields to the worker's
    /// event loop or, past its budget, is interrupted. `wants_warm`: the instance serves one
    /// request (`lanes.rs`). Returns the instance-pre of the lane the store is in.
    pub(crate) fn new_store<'a>(
        &self,
        linked: &'a Linked,
        state: HostState,
        wants_warm: bool,
    ) -> (PluginStore, &'a PluginPre<HostState>) {
        let (mut store, pre) = self.lanes.store(linked, state, wants_warm);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|mut ctx| Ok(ctx.data_mut().clock.tick()));
        (store, pre)
    }

    /// Arm the deadline of the next call: it may run for `timeout` of its own time. Time spent
    /// yielded to other connections does not count, so a busy worker does not make a plugin time
    /// out; the check comes at each tick, so a call is stopped after `timeout` at the earliest
    /// and about one tick later at the latest (plus scheduling delay).
    pub(crate) fn arm_deadline(&self, store: &mut wasmtime::Store<HostState>, timeout: Duration) {
        store.data_mut().clock.arm(timeout);
        store.set_epoch_deadline(1);
        self.ticker.keep_ticking();
    }

    /// Whether the ticker thread is alive (it stops when the engine is dropped).
    pub fn ticking(&self) -> bool {
        !self.ticker.stop.load(Ordering::Relaxed)
    }

    /// Whether the ticker is parked because no plugin has run for a while.
    pub fn ticker_parked(&self) -> bool {
        self.ticker.shared.parked.load(Ordering::SeqCst)
    }
}

/// The engine settings of one lane: a pool of `slots` instance slots whose freed memories keep
/// `keep_resident` bytes of written pages, reset as `scan` says ([`pagemap_scan`]), and every
/// other limit from `limits`.
fn engine_config(limits: &EngineLimits, slots: u32, keep_resident: usize, scan: Enabled) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        // A store keeps the fiber stack of its first call until it is dropped (wasmtime
        // caches it for the next call), so every slot needs one.
        .total_stacks(slots)
        // Core instances are allocated when used (this bounds them); a component from
        // componentize-py holds 14.
        .total_core_instances(slots.saturating_mul(component::MAX_CORE_INSTANCES))
        .max_core_instances_per_component(component::MAX_CORE_INSTANCES)
        .max_core_instance_size(component::MAX_CORE_INSTANCE_BYTES)
        .total_memories(slots)
        .max_memories_per_component(component::MAX_MEMORIES)
        .total_tables(slots.saturating_mul(2))
        .max_tables_per_component(component::MAX_TABLES)
        .table_elements(component::MAX_TABLE_ELEMENTS)
        .max_memory_size(limits.max_memory_bytes)
        .linear_memory_keep_resident(keep_resident)
        // A slot that was used before is taken before one that never was, so the slots that
        // keep pages are as few as the most instances ever alive at once (wasmtime's default
        // keeps 100 used slots aside for their own plugin and opens new ones instead: after a
        // few hot swaps every warm slot held pages).
        .max_unused_warm_slots(0)
        // Reset only the pages an instance wrote, found with Linux's `PAGEMAP_SCAN` (6.7 and
        // later; elsewhere wasmtime falls back). Off, which is wasmtime 48's default, a freed
        // slot is reset by writing its first `keep_resident` bytes whole: every page of the
        // plugin's memory, touched or not, copied or zeroed after every request, and made
        // resident (BENCHMARKS.md, "Proxy overhead", session 12). Not with swap: see
        // [`pagemap_scan`].
        .pagemap_scan(scan)
        .table_keep_resident(64 << 10);
    let mut config = Config::new();
    config
        // No guard pages and explicit bounds checks instead of signal-based traps: then a
        // recycled pool slot keeps its read/write mapping, and neither `memory.grow` nor the
        // next instantiation calls mprotect (each of which flushes the TLB of every core the
        // proxy runs on). Measured in BENCHMARKS.md ("Plugins").
        .signals_based_traps(false)
        .memory_guard_size(0)
        // A slot is as large as the largest memory a plugin may have, not wasmtime's 4 GiB
        // default: tens of thousands of slots then fit the address space.
        .memory_reservation(limits.max_memory_bytes as u64)
        // A pool slot never moves, and no memory grows past its slot: said to the compiler, a
        // memory's base address is a value it may keep instead of reloading it before every
        // access (BENCHMARKS.md, "PII redaction", session 20).
        .memory_may_move(false)
        .epoch_interruption(true)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if limits.perf_map {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Whether freed slots are reset from the kernel's list of written pages (`PAGEMAP_SCAN`). Only
/// when no swap is active: the scan sees present pages only, so in wasmtime 48 a written page
/// that the kernel swapped out while its instance ran would be neither reset nor given back, and
/// the next instance in that slot could read an earlier request's data. With swap, a freed slot
/// is rewritten whole, which is slower but never stale. Read when the engine is built.
fn pagemap_scan() -> Enabled {
    match std::fs::read_to_string("/proc/swaps") {
        Ok(swaps) if !swap_active(&swaps) => Enabled::Auto,
        _ => Enabled::No,
    }
}

/// Whether `/proc/swaps` (its text) lists a swap area: any line after the header.
fn swap_active(swaps: &str) -> bool {
    swaps.lines().skip(1).any(|line| !line.trim().is_empty())
}

/// Memory cap of a plugin whose `memory_mib` is unset, at the least.
pub const DEFAULT_MEMORY_BYTES: usize = 16 << 20;
/// Room above the memory a component starts with, for a plugin whose `memory_mib` is unset:
/// interpreters grow their heap as they run.
pub const AUTO_MEMORY_HEADROOM_BYTES: usize = 32 << 20;

/// The cap of a plugin whose `memory_mib` is unset and whose memory starts at `initial` bytes
/// (before `plugins.max_memory_mib` bounds it).
pub fn auto_memory_bytes(initial: usize) -> usize {
    initial.saturating_add(AUTO_MEMORY_HEADROOM_BYTES).max(DEFAULT_MEMORY_BYTES)
}

/// Bytes the largest linear memory of `component` starts with (None when unknown).
pub fn initial_memory_bytes(component: &Component) -> Option<usize> {
    let pages = component.resources_required()?.max_initial_memory_size?;
    usize::try_from(pages).ok()?.checked_mul(WASM_PAGE_BYTES)
}

/// Bytes of a WebAssembly page.
const WASM_PAGE_BYTES: usize = 64 << 10;

/// Whether `component` imports any WASI interface.
pub fn imports_wasi(engine: &Engine, component: &Component) -> bool {
    component.component_type().imports(engine).any(|(name, _)| name.starts_with("wasi:"))
}

/// The names of everything `component` imports (`wasi:cli/environment@0.2.0`, ...).
pub fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect()
}

/// Memory mappings one live instance adds (its linear memory: copy-on-write image, written
/// pages, reserved rest), and the ones every slot has from the start (fiber stack + guard page).
const MAPPINGS_PER_LIVE_INSTANCE: u64 = 4;
const MAPPINGS_PER_SLOT: u64 = 2;
/// Mappings of everything else (code, threads, heap), with room to spare.
const MAPPINGS_BESIDE_THE_POOL: u64 = 8192;

/// The most instances wanted by default: a watching plugin holds its instance for the whole
/// response, and LLM streams last seconds to minutes, so the pool is sized for 10,000 concurrent
/// watched streams. Slots cost address space, not memory; the memory budget bounds what they use.
const WANTED_INSTANCES: u32 = 12_288;

/// `max_instances` by default: [`WANTED_INSTANCES`], or as many as the process's memory mappings
/// allow with every one in use (about 9,400 at Linux's default `vm.max_map_count` of 65,530).
pub fn default_max_instances() -> u32 {
    let Some(limit) = max_map_count() else { return WANTED_INSTANCES };
    u32::try_from(instances_that_fit(limit)).unwrap_or(u32::MAX).clamp(256, WANTED_INSTANCES)
}

fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// Live instances whose mappings, with the idle slots' stacks and everything else, fit `limit`.
fn instances_that_fit(limit: u64) -> u64 {
    let beside = MAPPINGS_BESIDE_THE_POOL + u64::from(IDLE_SLOTS) * MAPPINGS_PER_SLOT;
    limit.saturating_sub(beside) / (MAPPINGS_PER_SLOT + MAPPINGS_PER_LIVE_INSTANCE)
}

/// Linux bounds the memory mappings of a process (`vm.max_map_count`, 65,530 by default); past
/// it `mmap` and `mprotect` fail and the proxy aborts on its next allocation. A pool whose every
/// instance in use would need more says so at start, with the fix, as Elasticsearch does.
fn warn_if_mappings_short(max_instances: u32) {
    let Some(limit) = max_map_count() else { return };
    let fits = instances_that_fit(limit);
    if u64::from(max_instances) > fits {
        tracing::warn!(
            max_instances,
            vm_max_map_count = limit,
            instances_that_fit = fits,
            "plugins.max_instances needs more memory mappings than vm.max_map_count allows when \
             every instance is in use; raise it (sysctl -w vm.max_map_count=262144) or lower \
             plugins.max_instances"
        );
    }
}

/// One idle instance's claim on the pool slots set aside for reuse; released on drop.
#[derive(Debug)]
pub(crate) struct IdleSlot {
    idle: Arc<AtomicUsize>,
}

impl Drop for IdleSlot {
    fn drop(&mut self) {
        self.idle.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Caps one store's linear memory and charges it to the engine's budget; remembers when it said
/// no so the failure is reported as [`FailureKind::MemoryCap`] (or busy, for the budget) rather
/// than a bare trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    cap: usize,
    pub(crate) hit: bool,
    pub(crate) over_budget: bool,
    /// Bytes this store's memory holds, charged to `used`; given back on drop.
    held: usize,
    budget: usize,
    used: Arc<AtomicUsize>,
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            // An error traps the guest at the grow (trap_on_grow_failure): a Rust guest would
            // otherwise abort with an anonymous `unreachable`.
            wasmtime::bail!("memory cap of {} bytes exceeded", self.cap);
        }
        // Instantiation asks for the initial size as a grow from 0: charged the same way.
        let more = desired.saturating_sub(current.max(self.held));
        let budget = self.budget;
        let charged = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                n.checked_add(more).filter(|&total| total <= budget)
            })
            .is_ok();
        if !charged {
            self.over_budget = true;
            wasmtime::bail!("the plugin memory budget of {budget} bytes is in use");
        }
        self.held += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Nanoseconds on a process-wide monotonic clock (for plugins' `now-ns` and call budgets).
pub(crate) fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The run-time budget of the call in progress on one store. At each epoch tick the call is
/// charged the time it ran since the previous tick (or since it was resumed) and then yields to
/// the worker's event loop, so a plugin that runs to its deadline delays the other connections of
/// its worker by at most one tick at a time. Past the budget it is interrupted.
#[derive(Debug, Default)]
pub(crate) struct CallClock {
    budget_ns: u64,
    used_ns: u64,
    /// When the slice being charged began: the call's start or the last tick.
    slice_start: u64,
    /// When the call was last resumed after a yield; written by the yield's future.
    resumed: Arc<AtomicU64>,
}

impl CallClock {
    fn arm(&mut self, budget: Duration) {
        self.budget_ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        self.used_ns = 0;
        self.slice_start = monotonic_ns();
        self.resumed.store(0, Ordering::Relaxed);
    }

    /// An epoch tick came while the guest ran.
    fn tick(&mut self) -> UpdateDeadline {
        let now = monotonic_ns();
        let ran_since = self.slice_start.max(self.resumed.load(Ordering::Relaxed));
        self.used_ns = self.used_ns.saturating_add(now.saturating_sub(ran_since));
        self.slice_start = now;
        if self.used_ns >= self.budget_ns {
            return UpdateDeadline::Interrupt;
        }
        let resumed = Arc::clone(&self.resumed);
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                resumed.store(monotonic_ns(), Ordering::Relaxed);
            }),
        )
    }
}

/// Increments the engine's epoch every tick while plugins run; stops when the engine is gone or
/// on drop. After [`Ticker::IDLE_BEFORE_PARK`] without a new call it parks (an idle proxy does not
/// wake a thousand times a second) until the next call arms a deadline. That is longer than any
/// deadline, so every call armed before the ticker parks has ended or been stopped by then.
struct Ticker {
    stop: Arc<AtomicBool>,
    shared: Arc<TickerShared>,
}

#[derive(Default)]
struct TickerShared {
    /// A deadline was armed since the ticker last looked.
    armed: AtomicBool,
    /// The ticker is parked, or about to park.
    parked: AtomicBool,
    thread: std::sync::OnceLock<thread::Thread>,
}

impl Ticker {
    /// Longer than the longest deadline a plugin may have, plus the two ticks of rounding.
    const IDLE_BEFORE_PARK: Duration = Duration::from_millis(MAX_TIMEOUT_MS + 100);

    /// Ticks every engine of `engines` (the lanes); stops when the first is dropped.
    fn start<'a>(
        engines: impl Iterator<Item = &'a Engine>,
        tick: Duration,
    ) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(TickerShared::default());
        let weak: Vec<_> = engines.map(Engine::weak).collect();
        let (flag, state) = (Arc::clone(&stop), Arc::clone(&shared));
        let idle_ticks = Self::IDLE_BEFORE_PARK.as_nanos().div_ceil(tick.as_nanos().max(1));
        let spawned = thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
            let mut idle = 0;
            'ticking: while !flag.load(Ordering::Relaxed) {
                thread::sleep(tick);
                if weak[0].upgrade().is_none() {
                    break;
                }
                for engine in weak.iter().filter_map(|w| w.upgrade()) {
                    engine.increment_epoch();
                }
                idle = if state.armed.swap(false, Ordering::SeqCst) { 0 } else { idle + 1 };
                if idle < idle_ticks {
                    continue;
                }
                state.parked.store(true, Ordering::SeqCst);
                // A call that arms after the swap above either sees `parked` and unparks this
                // thread, or its `armed` is seen here.
                while !state.armed.load(Ordering::SeqCst) {
                    if flag.load(Ordering::Relaxed) || weak[0].upgrade().is_none() {
                        break 'ticking;
                    }
                    // Wakes now and then to notice a dropped engine.
                    thread::park_timeout(Duration::from_secs(1));
                }
                state.parked.store(false, Ordering::SeqCst);
                idle = 0;
            }
            flag.store(true, Ordering::Relaxed);
        });
        // Without a ticker no deadline would ever fire: a sandbox without deadlines is refused,
        // and the proxy does not start.
        let handle = spawned.map_err(|e| format!("cannot start the plugin epoch ticker: {e}"))?;
        let _ = shared.thread.set(handle.thread().clone());
        Ok(Self { stop, shared })
    }

    /// A deadline was just armed: make sure the epoch moves. One relaxed load on the common path.
    fn keep_ticking(&self) {
        let shared = &self.shared;
        if shared.armed.load(Ordering::Relaxed) {
            return;
        }
        shared.armed.store(true, Ordering::SeqCst);
        if shared.parked.load(Ordering::SeqCst)
            && let Some(thread) = shared.thread.get()
        {
            thread.unpark();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::swap_active;

    #[test]
    fn swap_is_active_when_proc_swaps_lists_an_area() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!swap_active(header));
        assert!(!swap_active(""));
        let zram = format!("{header}/dev/zram0  partition\t4194300\t\t0\t\t100\n");
        assert!(swap_active(&zram));
    }
}
