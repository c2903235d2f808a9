//! The process allocator: jemalloc, declared by every binary that runs the proxy, and its tuning.

/// The global allocator every binary that runs the proxy declares (`#[global_allocator] static
/// ALLOC: switchyard::Allocator = switchyard::Allocator;`): jemalloc returns freed memory to the
/// system after its decay time, where glibc's per-thread arenas kept each plugin compilation's
/// freed peak (tens of MB in Cranelift's register allocator) resident, and mimalloc held more
/// (BENCHMARKS.md, "Soak").
pub use tikv_jemallocator::Jemalloc as Allocator;

/// Turns on jemalloc's background threads, which purge freed pages after their decay time (10 s)
/// whether or not the thread that freed them allocates again. Without them an arena purges only
/// on its own threads' next allocations, and the arenas of the threads that compiled a hot-swapped
/// plugin (idle until the next swap) can keep that compilation's freed peak resident. In one
/// 600 s soak each, the RSS floor grew by 10.1 % without them and by 5.6 % with them
/// (BENCHMARKS.md, "Soak"). Call once at start; the caller logs an error (a process whose global
/// allocator is not jemalloc gets one) and goes on.
pub fn start_background_purge() -> Result<(), String> {
    tikv_jemalloc_ctl::background_thread::write(true).map_err(|e| format!("jemalloc: {e}"))
}
