//! The limits snapshot plugins get (`tenant-limits`) without a store round trip of its own, for
//! the shared store: the freshest windows this replica has seen per tenant, taken from the
//! replies of its admissions and settlements (each script returns the tenant's windows anyway).
//! A request reads the store only when no snapshot is younger than
//! `[state] limits_snapshot_max_age_ms`, and concurrent requests of one tenant share that read:
//! so in steady state a request makes one round trip, its admission. docs/limits.md, "Round
//! trips", says how stale the snapshot can be and why that is safe (admission stays exact).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::window::Windows;

/// One tenant's freshest windows, and the read that refreshes them.
#[derive(Debug, Default)]
pub(super) struct Fresh {
    /// The windows of the store's latest reply this replica has seen, and when it came.
    seen: Mutex<Option<Seen>>,
    /// Held by the one request that reads the store for this tenant; the others wait for it and
    /// take its answer. Holds when the last read ended, and what it got (`None`: it failed).
    read: tokio::sync::Mutex<Option<(Instant, Option<Seen>)>>,
}

/// Windows as the store reported them, and when this replica got them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub windows: Windows,
    pub at: Instant,
}

impl Fresh {
    /// Keeps `windows` unless a reply the store answered later (by its clock) is already kept:
    /// replies of concurrent calls may arrive in any order.
    pub fn note(&self, windows: Windows) {
        let mut seen = self.seen.lock().unwrap_or_else(|poison| poison.into_inner());
        if seen.is_none_or(|s| s.windows.now_ms <= windows.now_ms) {
            *seen = Some(Seen { windows, at: Instant::now() });
        }
    }

    /// The kept windows when they are at most `max_age` old.
    fn younger(&self, max_age: Duration, now: Instant) -> Option<Seen> {
        let seen = self.seen.lock().unwrap_or_else(|poison| poison.into_inner());
        seen.filter(|s| now.saturating_duration_since(s.at) <= max_age)
    }

    /// Windows at most `max_age` old, else the ones `read` gets from the store (kept for the
    /// next requests). Only one request of the tenant reads at a time; requests that arrive while
    /// it reads wait for its answer instead of reading too, and share its failure (`None`).
    pub async fn get_or_read<F>(&self, max_age: Duration, read: impl FnOnce() -> F) -> Option<Seen>
    where
        F: Future<Output = Option<Windows>>,
    {
        let asked = Instant::now();
        if let Some(seen) = self.younger(max_age, asked) {
            return Some(seen);
        }
        let mut last_read = self.read.lock().await;
        if let Some((ended, got)) = *last_read
            && ended >= asked
        {
            // A read ended while this request waited: its answer is this request's too.
            return got;
        }
        let windows = read().await;
        if let Some(windows) = windows {
            self.note(windows);
        }
        let now = Instant::now();
        let got = windows.map(|windows| Seen { windows, at: now });
        *last_read = Some((now, got));
        got
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn windows(now_ms: u64, requests: u64) -> Windows {
        Windows { now_ms, requests, ..Windows::default() }
    }

    /// A read that counts itself and answers `answer`.
    fn counted(
        reads: &AtomicU32,
        answer: Option<Windows>,
    ) -> impl Future<Output = Option<Windows>> {
        reads.fetch_add(1, Ordering::SeqCst);
        std::future::ready(answer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_seen_within_the_bound_saves_the_read() {
        let fresh = Fresh::default();
        let reads = AtomicU32::new(0);
        let bound = Duration::from_millis(250);
        fresh.note(windows(1_000, 3));
        tokio::time::advance(Duration::from_millis(250)).await;
        let got = fresh.get_or_read(bound, || counted(&reads, None)).await;
        assert_eq!(got.map(|s| s.windows), Some(windows(1_000, 3)));
        assert_eq!(reads.load(Ordering::SeqCst), 0);

        tokio::time::advance(Duration::from_millis(1)).await;
        let got = fresh.get_or_read(bound, || counted(&reads, Some(windows(1_251, 4)))).await;
        assert_eq!(got.map(|s| s.windows), Some(windows(1_251, 4)), "too old: read");
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // The read is kept for the next request.
        let got = fresh.get_or_read(bound, || counted(&reads, None)).await;
        assert_eq!(got.map(|s| s.windows), Some(windows(1_251, 4)));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bound_of_zero_reads_every_time() {
        let fresh = Fresh::default();
        let reads = AtomicU32::new(0);
        fresh.note(windows(1_000, 3));
        tokio::time::advance(Duration::from_millis(1)).await;
        for n in 1..=3 {
            let answer = Some(windows(1_000 + n, n));
            let got = fresh.get_or_read(Duration::ZERO, || counted(&reads, answer)).await;
            assert_eq!(got.map(|s| s.windows), answer);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_reply_the_store_gave_last_is_kept_whatever_order_they_arrive_in() {
        let fresh = Fresh::default();
        fresh.note(windows(2_000, 5));
        fresh.note(windows(1_999, 4));
        let got = fresh.get_or_read(Duration::from_secs(1), || std::future::ready(None)).await;
        assert_eq!(got.map(|s| s.windows), Some(windows(2_000, 5)));
    }

    /// Requests that find no fresh windows while one of them reads wait for that read (its
    /// answer, or its failure) instead of reading too.
    async fn concurrent(answer: Option<Windows>) {
        let fresh = Arc::new(Fresh::default());
        let reads = Arc::new(AtomicU32::new(0));
        let (open, gate) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (fresh, reads, mut gate) = (Arc::clone(&fresh), Arc::clone(&reads), gate.clone());
            tasks.push(tokio::spawn(async move {
                let read = || async move {
                    reads.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    answer
                };
                fresh.get_or_read(Duration::from_secs(1), read).await.map(|s| s.windows)
            }));
        }
        // Let every task ask (the first one reads, the others wait on it), then answer.
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        open.send_replace(true);
        for task in tasks {
            assert_eq!(task.await.expect("task"), answer);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_of_a_tenant_share_one_read() {
        concurrent(Some(windows(5_000, 9))).await;
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_of_a_tenant_share_a_failed_read() {
        concurrent(None).await;
    }
}
