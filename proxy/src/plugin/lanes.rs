//! The engine's two instance pools ("lanes") and which one a new store goes to. A fresh instance
//! starts in a pool slot that an earlier instance left behind; what that slot keeps of its pages
//! decides the cost. The warm lane's slots keep up to `keep_resident_bytes` of the pages a plugin
//! wrote, reset with a copy when the slot is freed, so the next instance in that slot takes no
//! page faults and the proxy sends no TLB-flush interrupts to its other cores. The overflow lane's
//! slots give every page back to the kernel. The first `resident_instances` stores of
//! `isolation = "fresh"` plugins alive at once get warm slots and every other store an overflow
//! slot (a reused instance is reset only when it is dropped, so a warm slot saves it nothing), so
//! the memory kept when the proxy is idle again is bounded by `resident_instances ×
//! keep_resident_bytes` however large a burst was (10,000 watched streams once held 2.5 GB this
//! way when every slot kept its pages).
//!
//! wasmtime sets what a slot keeps per pool, and a pool per engine, so each lane is an engine.
//! A plugin is compiled once, in the warm lane, and its code is loaded into the overflow lane
//! from those bytes (the same code, twice in memory).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

use super::bindings::{Plugin, PluginPre};
use super::host::HostState;

/// One engine with its pool and its two linkers: the host interface alone, and the host
/// interface with deny-all WASI for components that import WASI.
pub(crate) struct Lane {
    engine: Engine,
    linker: Linker<HostState>,
    wasi_linker: Linker<HostState>,
}

impl Lane {
    pub(crate) fn new(config: &Config) -> Result<Self, String> {
        let engine = Engine::new(config).map_err(|e| format!("wasmtime engine: {e}"))?;
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| format!("wasmtime linker: {e}"))?;
        let mut wasi_linker = linker.clone();
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi_linker)
            .map_err(|e| format!("wasmtime linker (wasi): {e}"))?;
        Ok(Self { engine, linker, wasi_linker })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    fn link(&self, component: &Component, wasi: bool) -> Result<PluginPre<HostState>, String> {
        let linker = if wasi { &self.wasi_linker } else { &self.linker };
        linker.instantiate_pre(component).and_then(PluginPre::new).map_err(|e| format!("{e:#}"))
    }
}

/// The warm lane, the overflow lane (none when every slot the engine may need is warm) and the
/// count of warm stores alive.
pub(crate) struct Lanes {
    warm: Lane,
    overflow: Option<Lane>,
    warm_alive: Arc<AtomicUsize>,
    max_warm: usize,
}

/// One plugin linked in every lane.
pub(crate) struct Linked {
    warm: PluginPre<HostState>,
    overflow: Option<PluginPre<HostState>>,
}

impl Lanes {
    /// `max_warm`: how many stores may hold a warm slot at once (the warm pool's size).
    pub(crate) fn new(warm: Lane, overflow: Option<Lane>, max_warm: u32) -> Self {
        Self { warm, overflow, warm_alive: Arc::default(), max_warm: max_warm as usize }
    }

    /// The lane plugins are compiled in.
    pub(crate) fn warm(&self) -> &Lane {
        &self.warm
    }

    /// Every lane's engine (for the epoch ticker).
    pub(crate) fn engines(&self) -> impl Iterator<Item = &Engine> {
        std::iter::once(&self.warm.engine).chain(self.overflow.as_ref().map(|l| &l.engine))
    }

    /// Links `component` (compiled in the warm lane) in every lane; `wasi` picks the linker.
    pub(crate) fn link(&self, component: &Component, wasi: bool) -> Result<Linked, String> {
        let warm = self.warm.link(component, wasi)?;
        let overflow = match &self.overflow {
            None => None,
            Some(lane) => {
                let code = component.serialize().map_err(|e| format!("{e:#}"))?;
                let copy = super::artifacts::load_own(&lane.engine, &code)?;
                Some(lane.link(&copy, wasi)?)
            }
        };
        Ok(Linked { warm, overflow })
    }

    /// A new store for `state`: in a warm slot when `wants_warm` and fewer than `max_warm` are
    /// taken, else in the overflow lane. Returns the instance-pre of the same lane.
    ///
    /// Only instances that serve one request want a warm slot (`isolation = "fresh"`): their
    /// slot is reset after every request. A reused instance is reset only when it is finally
    /// dropped, so a warm slot saves it almost nothing, and while it waits between requests it
    /// would hold a seat that the next fresh instance needs.
    pub(crate) fn store<'a>(
        &self,
        linked: &'a Linked,
        state: HostState,
        wants_warm: bool,
    ) -> (PluginStore, &'a PluginPre<HostState>) {
        let (Some(lane), Some(pre)) = (&self.overflow, &linked.overflow) else {
            return (PluginStore::new(&self.warm.engine, state, None), &linked.warm);
        };
        let taken = wants_warm
            && self
                .warm_alive
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_warm).then_some(n + 1)
                })
                .is_ok();
        if taken {
            let seat = WarmSeat(Arc::clone(&self.warm_alive));
            (PluginStore::new(&self.warm.engine, state, Some(seat)), &linked.warm)
        } else {
            (PluginStore::new(&lane.engine, state, None), pre)
        }
    }

    /// Whether at least half of the warm slots are taken: then a dead fresh instance should give
    /// its slot back at once, before more instances spill into the overflow lane.
    pub(crate) fn warm_crowded(&self) -> bool {
        self.overflow.is_some() && self.warm_alive() * 2 >= self.max_warm
    }

    /// Stores in warm slots right now (for tests and /metrics).
    pub(crate) fn warm_alive(&self) -> usize {
        self.warm_alive.load(Ordering::Relaxed)
    }
}

/// A store and, when it is in the warm lane, its seat there. The seat is given up only after the
/// store, with its pool slot, is gone (fields drop in order), so the warm pool never has more
/// stores than slots.
pub(crate) struct PluginStore {
    store: Store<HostState>,
    _seat: Option<WarmSeat>,
}

impl PluginStore {
    fn new(engine: &Engine, state: HostState, seat: Option<WarmSeat>) -> Self {
        Self { store: Store::new(engine, state), _seat: seat }
    }
}

impl Deref for PluginStore {
    type Target = Store<HostState>;
    fn deref(&self) -> &Store<HostState> {
        &self.store
    }
}

impl DerefMut for PluginStore {
    fn deref_mut(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }
}

/// One warm slot taken; given back on drop.
struct WarmSeat(Arc<AtomicUsize>);

impl Drop for WarmSeat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
