//! Worker threads: each runs its own single-threaded event loop that accepts connections and serves
//! them start to finish, as Envoy's workers and nginx's worker processes do. A request never
//! changes thread, so there are no cross-thread wake-ups on its way and its data stays in one
//! core's caches. Also which worker the current thread is, for per-worker upstream pools.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::thread::{self, JoinHandle};

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The worker the calling thread belongs to: 0 for the thread that called [`crate::run`] (and
/// any thread that is not a worker), `1..workers` for the threads started by [`spawn`].
pub fn current() -> usize {
    INDEX.with(Cell::get)
}

/// A started worker thread.
#[derive(Debug)]
pub struct Worker {
    thread: JoinHandle<()>,
}

/// Starts worker `index` on a new thread with a single-threaded runtime, and runs the future
/// `serve` makes there until it ends. Tasks `serve` spawns run on that thread too; they are
/// dropped when `serve` returns, so it returns only once its connections are done.
pub fn spawn<F, Fut>(index: usize, serve: F) -> io::Result<Worker>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let thread = thread::Builder::new().name(format!("worker-{index}")).spawn(move || {
        INDEX.with(|i| i.set(index));
        runtime.block_on(serve());
    })?;
    Ok(Worker { thread })
}

impl Worker {
    /// Waits for the thread to end, without blocking the async caller.
    pub async fn join(self) {
        let thread = self.thread;
        if !matches!(tokio::task::spawn_blocking(move || thread.join()).await, Ok(Ok(()))) {
            tracing::error!("a worker thread panicked");
        }
    }
}
