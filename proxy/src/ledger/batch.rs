//! Group commit for the shared store: calls that arrive while a batch is in Redis wait, and go
//! together in the next one, as one script call. One request at a time is a batch of one (no added
//! wait); under load a batch holds what arrived during the previous round trip, and what the tasks
//! ready on the same thread add before it leaves, so Redis runs one script, one hash read and write
//! per tenant, for many requests.
//!
//! The batches are sent by a task of their own, started by the call that finds none running and
//! ended when the queue is empty: a caller that gives up (its client went away, its timeout
//! ended) drops only its own wait, never a batch that holds other callers' calls. A call whose
//! caller gave up before its batch left is not sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Most calls in one batch (bounds one script's run time in Redis).
pub const MAX_BATCH: usize = 128;

/// Most turns a batch waits for the tasks ready on its thread while they keep adding calls.
const MAX_YIELDS: usize = 3;

struct Waiting<J, R> {
    job: J,
    /// Groups calls that may share a batch (the store's clock in tests; one value otherwise).
    group: Option<u64>,
    tell: oneshot::Sender<R>,
}

struct Queue<J, R> {
    waiting: VecDeque<Waiting<J, R>>,
    /// Whether a task is sending batches (it takes every call queued before it ends).
    sending: bool,
}

/// One kind of call's queue (admissions, or settlements).
pub struct Batcher<J, R> {
    queue: Arc<Mutex<Queue<J, R>>>,
}

impl<J, R> Default for Batcher<J, R> {
    fn default() -> Self {
        Self { queue: Arc::new(Mutex::new(Queue { waiting: VecDeque::new(), sending: false })) }
    }
}

impl<J, R> std::fmt::Debug for Batcher<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

fn lock<J, R>(queue: &Mutex<Queue<J, R>>) -> std::sync::MutexGuard<'_, Queue<J, R>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Runs `job` in a batch with the calls of the same `group` waiting beside it: `send` gets a
    /// batch's group and jobs in arrival order and returns one answer per job, in that order. The
    /// batch is sent by a task on the current runtime, so dropping this future abandons only this
    /// call's wait. `None` when the batch could not be answered (the runtime is shutting down:
    /// treat as the store unavailable).
    pub async fn run<F, Fut>(&self, job: J, group: Option<u64>, send: F) -> Option<R>
    where
        F: Fn(Option<u64>, Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (tell, heard) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.queue);
            queue.waiting.push_back(Waiting { job, group, tell });
            !std::mem::replace(&mut queue.sending, true)
        };
        if start {
            tokio::spawn(send_batches(self.queue.clone(), send));
        }
        heard.await.ok()
    }

    /// Calls waiting (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.queue).waiting.len()
    }
}

/// Sends the queue's calls, a batch at a time (the oldest calls of the first one's group), until
/// it is empty.
async fn send_batches<J, R, F, Fut>(queue: Arc<Mutex<Queue<J, R>>>, send: F)
where
    F: Fn(Option<u64>, Vec<J>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let sending = Sending { queue: &queue };
    loop {
        // Let the tasks that are ready on this thread run first, as long as they keep adding
        // calls: those about to call (woken by the last batch's answers, or by their upstream's
        // answer in the same wake-up) join this batch instead of starting the next one. Fewer,
        // larger batches are fewer scripts in Redis and fewer wake-ups on both sides
        // (BENCHMARKS.md, "Limits on the request path", session 18). A turn costs no time when
        // nothing else is ready.
        for _ in 0..MAX_YIELDS {
            let before = lock(&queue).waiting.len();
            tokio::task::yield_now().await;
            if lock(&queue).waiting.len() == before {
                break;
            }
        }
        let (group, batch) = {
            let mut queue = lock(&queue);
            // Callers that gave up before their batch left: their calls are not sent.
            queue.waiting.retain(|w| !w.tell.is_closed());
            let Some(group) = queue.waiting.front().map(|w| w.group) else {
                // Done, under the lock: the guard must not run later, when a new call may
                // already have started the next task and queued its call.
                queue.sending = false;
                std::mem::forget(sending);
                return;
            };
            let same =
                queue.waiting.iter().take(MAX_BATCH).take_while(|w| w.group == group).count();
            (group, queue.waiting.drain(..same).collect::<Vec<_>>())
        };
        let (jobs, tells): (Vec<J>, Vec<_>) = batch.into_iter().map(|w| (w.job, w.tell)).unzip();
        let answers = send(group, jobs).await;
        for (tell, answer) in tells.into_iter().zip(answers) {
            // A caller gone since: its answer is dropped.
            let _ = tell.send(answer);
        }
    }
}

/// Marks the queue as having no sender when the sending task is dropped mid-batch (its runtime
/// shuts down), so a later call starts another; the calls waiting are dropped, and their callers
/// told `None`.
struct Sending<'a, J, R> {
    queue: &'a Mutex<Queue<J, R>>,
}

impl<J, R> Drop for Sending<'_, J, R> {
    fn drop(&mut self) {
        let mut queue = lock(self.queue);
        queue.sending = false;
        queue.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_call_alone_is_a_batch_of_one() {
        let batcher = Batcher::<u32, u32>::default();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let send = |sizes: Arc<Mutex<Vec<usize>>>| {
            move |_: Option<u64>, jobs: Vec<u32>| {
                sizes.lock().unwrap().push(jobs.len());
                async move { jobs.iter().map(|j| j * 10).collect() }
            }
        };
        assert_eq!(batcher.run(1, None, send(sizes.clone())).await, Some(10));
        assert_eq!(batcher.run(2, None, send(sizes.clone())).await, Some(20));
        assert_eq!(*sizes.lock().unwrap(), [1, 1]);
    }

    /// Batches sent, each with its group.
    type Sent = Arc<Mutex<Vec<(Option<u64>, Vec<u32>)>>>;
    /// An answer on its way.
    type Answers = std::pin::Pin<Box<dyn Future<Output = Vec<u32>> + Send>>;

    /// What the tests' batches send: each job times ten, once `gate` opens; the batches sent are
    /// recorded (group, jobs).
    #[derive(Clone)]
    struct Gated {
        gate: tokio::sync::watch::Receiver<bool>,
        sent: Sent,
        count: Arc<AtomicUsize>,
    }

    impl Gated {
        fn new() -> (Self, tokio::sync::watch::Sender<bool>) {
            let (release, gate) = tokio::sync::watch::channel(false);
            let sent = Arc::new(Mutex::new(Vec::new()));
            (Self { gate, sent, count: Arc::new(AtomicUsize::new(0)) }, release)
        }

        fn send(&self) -> impl Fn(Option<u64>, Vec<u32>) -> Answers + Send + 'static {
            let this = self.clone();
            move |group, jobs| {
                this.sent.lock().unwrap().push((group, jobs.clone()));
                this.count.fetch_add(1, Ordering::SeqCst);
                let mut gate = this.gate.clone();
                Box::pin(async move {
                    let _ = gate.wait_for(|open| *open).await;
                    jobs.iter().map(|j| j * 10).collect()
                })
            }
        }

        async fn until_sent(&self, n: usize) {
            while self.count.load(Ordering::SeqCst) < n {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Calls made while a batch is in flight go together in the next, each gets its own answer,
    /// and a different group goes in a batch of its own.
    #[tokio::test]
    async fn calls_waiting_behind_a_batch_go_together_in_the_next() {
        let batcher = Arc::new(Batcher::<u32, u32>::default());
        let (gated, release) = Gated::new();
        let call = |job: u32, group: Option<u64>| {
            let (batcher, send) = (batcher.clone(), gated.send());
            tokio::spawn(async move { batcher.run(job, group, send).await })
        };
        let first = call(1, None);
        gated.until_sent(1).await;
        // The first batch is in flight: these wait.
        let rest: Vec<_> = [(2, None), (3, None), (4, Some(7)), (5, None)]
            .into_iter()
            .map(|(job, group)| call(job, group))
            .collect();
        while batcher.waiting() < 4 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(10));
        let mut answers = Vec::new();
        for task in rest {
            answers.push(task.await.unwrap());
        }
        assert_eq!(answers, [Some(20), Some(30), Some(40), Some(50)]);
        let sent = gated.sent.lock().unwrap().clone();
        let expected = [(None, vec![1]), (None, vec![2, 3]), (Some(7), vec![4]), (None, vec![5])];
        assert_eq!(sent, expected, "grouped by arrival and group, each with its group");
    }

    /// Callers woken by a batch's answers that call again at once (a settlement after an
    /// admission) join the next batch with the calls that waited behind the first, instead of
    /// the calls that waited going alone.
    #[tokio::test]
    async fn callers_woken_by_an_answer_join_the_next_batch() {
        let batcher = Arc::new(Batcher::<u32, u32>::default());
        let (gated, release) = Gated::new();
        let twice = |first: u32, second: u32| {
            let (batcher, one, two) = (batcher.clone(), gated.send(), gated.send());
            tokio::spawn(async move {
                let a = batcher.run(first, None, one).await;
                (a, batcher.run(second, None, two).await)
            })
        };
        let (a, b) = (twice(1, 2), twice(10, 20));
        gated.until_sent(1).await;
        let waiting = {
            let (batcher, send) = (batcher.clone(), gated.send());
            tokio::spawn(async move { batcher.run(3, None, send).await })
        };
        while batcher.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert_eq!(a.await.unwrap(), (Some(10), Some(20)));
        assert_eq!(b.await.unwrap(), (Some(100), Some(200)));
        assert_eq!(waiting.await.unwrap(), Some(30));
        let sent = gated.sent.lock().unwrap().clone();
        assert_eq!(sent, [(None, vec![1, 10]), (None, vec![3, 2, 20])]);
    }

    /// The caller that started a batch gives up while it is in flight: the other calls in that
    /// batch are still answered, and a call whose caller gave up before its batch left is not
    /// sent at all.
    #[tokio::test]
    async fn a_caller_that_gives_up_fails_no_other_call() {
        let batcher = Arc::new(Batcher::<u32, u32>::default());
        let (gated, release) = Gated::new();
        let call = |job: u32| {
            let (batcher, send) = (batcher.clone(), gated.send());
            tokio::spawn(async move { batcher.run(job, None, send).await })
        };
        let starter = call(1);
        gated.until_sent(1).await;
        let (second, gone) = (call(2), call(3));
        while batcher.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        starter.abort();
        gone.abort();
        let _ = (starter.await, gone.await);
        release.send(true).unwrap();
        assert_eq!(second.await.unwrap(), Some(20), "answered although its batch's starter left");
        let sent = gated.sent.lock().unwrap().clone();
        assert_eq!(sent, [(None, vec![1]), (None, vec![2])], "the gone caller's call was not sent");
        // The queue goes on.
        assert_eq!(batcher.run(4, None, gated.send()).await, Some(40));
    }
}
