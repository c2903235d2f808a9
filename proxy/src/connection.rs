//! What bounds a client connection outside its requests: the cap on open connections, the
//! deadline for its first request (TLS handshake, protocol detection and the HTTP/2 preface
//! included), the idle timeout between requests, and the process's file-descriptor limit.
//!
//! hyper's own `header_read_timeout` starts only once a connection is known to be HTTP/1.1, and
//! HTTP/2 has no idle timeout at all, so a connection that sends nothing, or half a preface, would
//! otherwise stay open for as long as the peer likes. Each connection therefore counts its
//! requests in flight (from the request head until its response body is dropped) and a
//! [`expired`] timer closes it when that count stays at zero too long, or when a response has
//! waited too long for a client that stopped reading (nginx's `send_timeout`). The timer reads
//! the counts at its own deadlines; counting a request wakes nothing.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::body::{Body, BoxError};

/// A cap on the connections open at once on one listener, shared by every worker.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
}

impl ConnectionCap {
    /// Room for `max` open connections.
    pub fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))) }
    }

    /// A place for a connection just accepted, held until it closes; `None` when the cap is
    /// reached (the caller closes the connection at once, as Envoy's `max_connections` does).
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }
}

/// Counts the requests in flight on one connection, and which of their response bodies wait on
/// the client, for its [`expired`] timer. Counting wakes nobody: the timer reads the counts when
/// its own deadline comes, so a request costs a few atomic operations, not a wake-up and a new
/// timer entry at its start and at its end.
#[derive(Debug, Clone)]
pub struct Activity {
    shared: Arc<Shared>,
}

/// What [`expired`] watches.
#[derive(Debug)]
pub struct Watched {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// When the connection opened: the clock that `last_end_ns` counts from.
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in ns after `opened`.
    last_end_ns: AtomicU64,
    /// Requests begun so far (the next one's id); until one has, the first-request deadline
    /// applies.
    next_id: AtomicU64,
    stalls: Mutex<Stalls>,
}

/// Response bodies that handed hyper a frame it has not come back for yet: hyper asks a body for
/// its next frame only once the client has taken the last one (HTTP/1.1 socket buffer, HTTP/2
/// flow-control window), so a body waiting long here has a client that stopped reading.
#[derive(Debug, Default)]
struct Stalls {
    /// (body, since when it waits), oldest first.
    waiting: Vec<(u64, Instant)>,
}

impl Stalls {
    fn clear(&mut self, id: u64) {
        self.waiting.retain(|(waiting, _)| *waiting != id);
    }
}

fn lock(stalls: &Mutex<Stalls>) -> std::sync::MutexGuard<'_, Stalls> {
    stalls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One request in flight; uncounted on drop.
#[derive(Debug)]
pub struct InFlight {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let shared = &self.shared;
        lock(&shared.stalls).clear(self.id);
        let since_open = Instant::now().saturating_duration_since(shared.opened);
        let nanos = u64::try_from(since_open.as_nanos()).unwrap_or(u64::MAX);
        shared.last_end_ns.store(nanos, Ordering::Release);
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// A counter at zero, and what [`expired`] watches it with.
    pub fn new() -> (Self, Watched) {
        let shared = Arc::new(Shared {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_end_ns: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            stalls: Mutex::new(Stalls::default()),
        });
        (Self { shared: Arc::clone(&shared) }, Watched { shared })
    }

    /// Counts one more request until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        let shared = &self.shared;
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        InFlight { shared: Arc::clone(shared), id }
    }
}

/// Why a connection's timer ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No request in flight for too long: close it politely.
    Idle,
    /// A response has waited on the client for `send` (it stopped reading): cut it, which drops
    /// the response and with it the upstream connection and any plugin instance.
    SendTimeout,
}

/// The deadlines [`expired`] applies.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From the connection's start to its first request.
    pub first: Duration,
    /// With no request in flight.
    pub idle: Duration,
    /// A response waiting on the client to read.
    pub send: Duration,
}

/// Resolves once the connection has had no request in flight for `first` since it opened (no
/// request yet) or for `idle` since its last request ended ([`Expiry::Idle`]), or once a response
/// has waited on the client for `send` ([`Expiry::SendTimeout`], checked every quarter of it).
///
/// The timer sleeps until the next moment one of these could be due and then reads the counts.
/// While requests are in flight it wakes every quarter of `send`, and at least every `idle`: a
/// request that ends between two wakes then has its idle deadline still ahead at the next one,
/// so an idle connection closes on time.
pub async fn expired(watched: Watched, deadlines: Deadlines) -> Expiry {
    let shared = watched.shared;
    let every = (deadlines.send / 4).min(deadlines.idle).max(Duration::from_millis(1));
    let sleep = tokio::time::sleep_until(shared.opened + deadlines.first);
    tokio::pin!(sleep);
    loop {
        sleep.as_mut().await;
        let now = Instant::now();
        let next = if shared.in_flight.load(Ordering::Acquire) == 0 {
            // Read after `in_flight` (acquire): a request that has ended is counted here.
            let due = if shared.next_id.load(Ordering::Relaxed) > 0 {
                let ended = Duration::from_nanos(shared.last_end_ns.load(Ordering::Acquire));
                shared.opened + ended + deadlines.idle
            } else {
                shared.opened + deadlines.first
            };
            if now >= due {
                return Expiry::Idle;
            }
            due
        } else {
            let oldest = lock(&shared.stalls).waiting.first().map(|(_, since)| *since);
            if oldest.is_some_and(|since| now.saturating_duration_since(since) >= deadlines.send) {
                return Expiry::SendTimeout;
            }
            now + every
        };
        sleep.as_mut().reset(next);
    }
}

/// A response body that keeps its request counted as in flight until hyper drops it, so a long
/// stream is never mistaken for an idle connection, and notes when it waits on the client.
pub fn track(body: Body, in_flight: InFlight) -> Body {
    use http_body_util::BodyExt;
    Tracked { body, in_flight }.boxed_unsync()
}

struct Tracked {
    body: Body,
    in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let InFlight { shared, id } = &this.in_flight;
        lock(&shared.stalls).clear(*id);
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            lock(&shared.stalls).waiting.push((*id, Instant::now()));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Raises the soft limit on open files to the hard limit, as Envoy and nginx
/// (`worker_rlimit_nofile`) let operators do, since every client and upstream connection takes a
/// descriptor. Returns the soft limit in force afterwards (`None`: unlimited or unknown).
pub fn raise_fd_limit() -> Option<u64> {
    use rlimit::{INFINITY, Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!("cannot read the open-file limit: {e}");
            return None;
        }
    };
    if soft >= hard || hard == INFINITY {
        return (soft != INFINITY).then_some(soft);
    }
    match setrlimit(Resource::NOFILE, hard, hard) {
        Ok(()) => Some(hard),
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
            Some(soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_expires_after_the_first_deadline() {
        let (_activity, watched) = Activity::new();
        let start = Instant::now();
        assert_eq!(expired(watched, deadlines()).await, Expiry::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_hold_it_open_and_idleness_restarts_the_clock() {
        let (activity, watched) = Activity::new();
        let start = Instant::now();
        let request = activity.begin();
        let timer = tokio::spawn(expired(watched, deadlines()));
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!timer.is_finished(), "a request in flight keeps the connection");
        drop(request);
        assert_eq!(timer.await.unwrap(), Expiry::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(305));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_ending_between_two_checks_closes_the_connection_idle_after_its_end() {
        let (activity, watched) = Activity::new();
        let start = Instant::now();
        let timer = tokio::spawn(expired(watched, deadlines()));
        for (from, to) in [(1, 4), (6, 303)] {
            tokio::time::sleep_until(start + Duration::from_secs(from)).await;
            let request = activity.begin();
            tokio::time::sleep_until(start + Duration::from_secs(to)).await;
            drop(request);
        }
        assert_eq!(timer.await.unwrap(), Expiry::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(308), "5 s after the last request ended");
    }

    fn deadlines() -> Deadlines {
        let secs = Duration::from_secs;
        Deadlines { first: secs(2), idle: secs(5), send: secs(60) }
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_does_not_take_expires_after_the_send_timeout() {
        use http_body_util::BodyExt;
        let (activity, watched) = Activity::new();
        let frames = futures_util::stream::iter([Ok(Frame::data(Bytes::from("a")))]);
        let mut body =
            track(http_body_util::StreamBody::new(frames).boxed_unsync(), activity.begin());
        let timer = tokio::spawn(expired(watched, deadlines()));
        // The first frame is taken at once; then hyper never asks again.
        body.frame().await.unwrap().unwrap();
        let stalled = Instant::now();
        assert_eq!(timer.await.unwrap(), Expiry::SendTimeout);
        let after = stalled.elapsed();
        assert!(after >= Duration::from_secs(60) && after <= Duration::from_secs(75), "{after:?}");
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let raised = raise_fd_limit();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, hard, "the soft limit is the hard limit now");
        assert_eq!(raised, Some(soft));
    }
}
