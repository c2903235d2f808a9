//! Worker threads: each runs its own single-threaded event loop that accepts connections and serves
//! them start to finish, as Envoy's workers and nginx's worker processes do. A request never
//! changes thread, so there are no cross-thread wake-ups on its way and its data stays in one
//! core's caches. Also which worker the current thread is, for per-worker upstream pools, and the
//! [`Balancer`] that spreads connections over the workers.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use tokio::sync::mpsc;

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

/// Spreads the API connections over the workers by how many each serves right now (Envoy's
/// "exact balance"): the worker that accepted a connection keeps it unless another worker serves
/// fewer, which then gets it through its inbox. Kernel wake-ups alone can leave one worker with
/// most of a burst of connections, and a keep-alive connection stays where it lands.
#[derive(Debug)]
pub struct Balancer {
    active: Box<[AtomicUsize]>,
    inboxes: Box<[mpsc::UnboundedSender<Handoff>]>,
}

/// A connection accepted by one worker for another to serve.
#[derive(Debug)]
pub struct Handoff {
    pub stream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub slot: Slot,
    /// Its place under the listener's connection cap, taken by the worker that accepted it.
    pub permit: tokio::sync::OwnedSemaphorePermit,
}

/// One connection counted against a worker while it is served; uncounted on drop.
#[derive(Debug)]
pub struct Slot {
    balancer: Arc<Balancer>,
    worker: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.balancer.active[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balancer {
    /// A balancer for `workers` workers, and the inbox of each (index = worker).
    pub fn new(workers: usize) -> (Arc<Self>, Vec<mpsc::UnboundedReceiver<Handoff>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..workers.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
        let active = (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect();
        (Arc::new(Self { active, inboxes: senders.into() }), receivers)
    }

    /// The worker that should serve a connection `me` just accepted, counted against it: `me`
    /// unless another worker serves fewer connections.
    pub fn assign(self: &Arc<Self>, me: usize) -> Slot {
        let load = |w: usize| self.active.get(w).map_or(usize::MAX, |a| a.load(Ordering::Relaxed));
        let least = (0..self.active.len()).min_by_key(|&w| load(w)).unwrap_or(me);
        let worker = if load(least) < load(me) { least } else { me };
        self.keep(worker)
    }

    /// Counts a connection against `worker` without a choice.
    pub fn keep(self: &Arc<Self>, worker: usize) -> Slot {
        let worker = worker.min(self.active.len() - 1);
        self.active[worker].fetch_add(1, Ordering::Relaxed);
        Slot { balancer: Arc::clone(self), worker }
    }

    /// Sends a connection to the worker its slot names; gives it back if that worker has stopped.
    pub fn hand_over(&self, handoff: Handoff) -> Result<(), Handoff> {
        self.inboxes[handoff.slot.worker].send(handoff).map_err(|e| e.0)
    }
}

impl Slot {
    /// The worker this connection is counted against.
    pub fn worker(&self) -> usize {
        self.worker
    }
}
