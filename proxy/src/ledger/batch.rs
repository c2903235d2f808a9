//! Group commit for the shared store: calls that arrive while a batch is in Redis wait, and go
//! together in the next one, as one script call. One request at a time is a batch of one (no added
//! wait); under load a batch holds what arrived during the previous round trip, so Redis runs one
//! script, one hash read and write per tenant, for many requests.
//!
//! No task or thread of its own: the caller that finds no batch in flight leads, sends the queue
//! and hands each caller its answer; then it passes the lead to the oldest caller still waiting.
//! A caller that gives up (its request went away, its timeout ended) passes the lead on too, so
//! the queue never stalls without a leader.

use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

/// Most calls in one batch (bounds one script's run time in Redis).
pub const MAX_BATCH: usize = 128;

/// What a waiting caller is told.
enum Turn<R> {
    /// Its answer.
    Done(R),
    /// Lead the next batch.
    Lead,
}

struct Waiting<J, R> {
    job: J,
    /// Groups calls that may share a batch (the store's clock in tests; one value otherwise).
    group: Option<u64>,
    tell: mpsc::Sender<Turn<R>>,
}

struct Queue<J, R> {
    waiting: Vec<Waiting<J, R>>,
    leading: bool,
}

/// One kind of call's queue (admissions, or settlements).
pub struct Batcher<J, R> {
    queue: Mutex<Queue<J, R>>,
}

impl<J, R> Default for Batcher<J, R> {
    fn default() -> Self {
        Self { queue: Mutex::new(Queue { waiting: Vec::new(), leading: false }) }
    }
}

impl<J, R> std::fmt::Debug for Batcher<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<J, R> Batcher<J, R> {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue<J, R>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `job` in a batch with the calls of the same `group` waiting beside it: `send` gets the
    /// batch's jobs in arrival order and returns one answer per job, in that order. `None` when the
    /// batch that held the job was abandoned by its leader (treat as the store unavailable).
    pub async fn run<F, Fut>(&self, job: J, group: Option<u64>, send: F) -> Option<R>
    where
        F: Fn(Vec<J>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (tell, heard) = mpsc::channel(1);
        let lead = {
            let mut queue = self.queue();
            queue.waiting.push(Waiting { job, group, tell });
            !std::mem::replace(&mut queue.leading, true)
        };
        let mut heard = Listener { heard, batcher: self };
        if !lead {
            match heard.heard.recv().await? {
                Turn::Done(answer) => return Some(answer),
                Turn::Lead => {}
            }
        }
        // Leading: the batch is the oldest calls of the first one's group (this caller's own
        // call is the first: the lead goes to the oldest waiting).
        let lead = Lead { batcher: self };
        let batch: Vec<Waiting<J, R>> = {
            let mut queue = self.queue();
            let group = queue.waiting.first().map(|w| w.group);
            let same =
                queue.waiting.iter().take(MAX_BATCH).take_while(|w| Some(w.group) == group).count();
            queue.waiting.drain(..same).collect()
        };
        let (jobs, tells): (Vec<J>, Vec<_>) = batch.into_iter().map(|w| (w.job, w.tell)).unzip();
        let answers = send(jobs).await;
        for (tell, answer) in tells.into_iter().zip(answers) {
            // A full channel cannot happen (one message each); a closed one is a caller gone.
            let _ = tell.try_send(Turn::Done(answer));
        }
        drop(lead);
        match heard.heard.recv().await? {
            Turn::Done(answer) => Some(answer),
            Turn::Lead => None,
        }
    }

    /// Calls waiting (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queue().waiting.len()
    }

    /// Passes the lead to the oldest caller still waiting, or ends it when none is.
    fn pass_lead(&self) {
        let mut queue = self.queue();
        while let Some(next) = queue.waiting.first() {
            if next.tell.try_send(Turn::Lead).is_ok() {
                return;
            }
            // That caller is gone: its call is dropped unsent.
            queue.waiting.remove(0);
        }
        queue.leading = false;
    }
}

/// The lead, passed on when the batch is answered or abandoned.
struct Lead<'a, J, R> {
    batcher: &'a Batcher<J, R>,
}

impl<J, R> Drop for Lead<'_, J, R> {
    fn drop(&mut self) {
        self.batcher.pass_lead();
    }
}

/// A caller's inbox. Dropped holding an unread lead (the caller gave up just as it was passed),
/// it passes the lead on.
struct Listener<'a, J, R> {
    heard: mpsc::Receiver<Turn<R>>,
    batcher: &'a Batcher<J, R>,
}

impl<J, R> Drop for Listener<'_, J, R> {
    fn drop(&mut self) {
        self.heard.close();
        if let Ok(Turn::Lead) = self.heard.try_recv() {
            self.batcher.pass_lead();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn one_call_alone_is_a_batch_of_one() {
        let batcher = Batcher::<u32, u32>::default();
        let sizes = Mutex::new(Vec::new());
        let send = |jobs: Vec<u32>| {
            sizes.lock().unwrap().push(jobs.len());
            async move { jobs.iter().map(|j| j * 10).collect() }
        };
        assert_eq!(batcher.run(1, None, send).await, Some(10));
        assert_eq!(batcher.run(2, None, send).await, Some(20));
        assert_eq!(*sizes.lock().unwrap(), [1, 1]);
    }

    /// Calls made while a batch is in flight go together in the next, each gets its own answer,
    /// and a different group goes in a batch of its own.
    #[tokio::test]
    async fn calls_waiting_behind_a_batch_go_together_in_the_next() {
        let batcher = Arc::new(Batcher::<u32, u32>::default());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = tokio::sync::watch::channel(false);
        let sent = Arc::new(AtomicUsize::new(0));
        let call = |job: u32, group: Option<u64>| {
            let (batcher, sizes, sent) = (batcher.clone(), sizes.clone(), sent.clone());
            let gate = gate.clone();
            tokio::spawn(async move {
                let send = |jobs: Vec<u32>| {
                    sizes.lock().unwrap().push(jobs.clone());
                    sent.fetch_add(1, Ordering::SeqCst);
                    let mut gate = gate.clone();
                    async move {
                        let _ = gate.wait_for(|open| *open).await;
                        jobs.iter().map(|j| j * 10).collect()
                    }
                };
                batcher.run(job, group, send).await
            })
        };
        let first = call(1, None);
        while sent.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
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
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes, [vec![1], vec![2, 3], vec![4], vec![5]], "grouped by arrival and group");
    }

    /// A leader that gives up mid-batch fails that batch's callers and passes the lead on: later
    /// calls are still answered.
    #[tokio::test]
    async fn an_abandoned_batch_fails_its_callers_and_the_queue_goes_on() {
        let batcher = Batcher::<u32, u32>::default();
        let stuck = |_jobs: Vec<u32>| std::future::pending::<Vec<u32>>();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), async {
            batcher.run(1, None, stuck).await
        })
        .await;
        assert!(gave_up.is_err());
        let send = |jobs: Vec<u32>| async move { jobs.iter().map(|j| j + 1).collect() };
        assert_eq!(batcher.run(2, None, send).await, Some(3));
    }
}
