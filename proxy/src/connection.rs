//! What bounds a client connection outside its requests: the cap on open connections, the
//! deadline for its first request (TLS handshake, protocol detection and the HTTP/2 preface
//! included), the idle timeout between requests, and the process's file-descriptor limit.
//!
//! hyper's own `header_read_timeout` starts only once a connection is known to be HTTP/1.1, and
//! HTTP/2 has no idle timeout at all, so a connection that sends nothing, or half a preface, would
//! otherwise stay open for as long as the peer likes. Each connection therefore counts its
//! requests in flight (from the request head until its response body is dropped) and a
//! [`expired`] timer closes it when that count stays at zero too long.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
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

/// Counts the requests in flight on one connection, for its [`expired`] timer.
#[derive(Debug, Clone)]
pub struct Activity {
    count: Arc<watch::Sender<usize>>,
}

/// One request in flight; uncounted on drop.
#[derive(Debug)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.send_modify(|count| *count = count.saturating_sub(1));
    }
}

impl Activity {
    /// A counter at zero, and the receiver [`expired`] watches it with.
    pub fn new() -> (Self, watch::Receiver<usize>) {
        let (count, receiver) = watch::channel(0);
        (Self { count: Arc::new(count) }, receiver)
    }

    /// Counts one more request until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.count.send_modify(|count| *count += 1);
        InFlight { count: Arc::clone(&self.count) }
    }
}

/// Resolves once the connection has had no request in flight for `first` since it opened (no
/// request yet) or for `idle` since its last request ended. Never resolves once the counter is
/// gone, since the connection is ending anyway.
pub async fn expired(mut requests: watch::Receiver<usize>, first: Duration, idle: Duration) {
    let mut deadline = Instant::now() + first;
    loop {
        let changed = if *requests.borrow_and_update() == 0 {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                changed = requests.changed() => changed,
            }
        } else {
            requests.changed().await
        };
        if changed.is_err() {
            return std::future::pending().await;
        }
        if *requests.borrow() == 0 {
            deadline = Instant::now() + idle;
        }
    }
}

/// A response body that keeps its request counted as in flight until hyper drops it, so a long
/// stream is never mistaken for an idle connection.
pub fn track(body: Body, in_flight: InFlight) -> Body {
    use http_body_util::BodyExt;
    Tracked { body, _in_flight: in_flight }.boxed_unsync()
}

struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
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
        let (_activity, requests) = Activity::new();
        let start = Instant::now();
        expired(requests, Duration::from_secs(2), Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_hold_it_open_and_idleness_restarts_the_clock() {
        let (activity, requests) = Activity::new();
        let start = Instant::now();
        let request = activity.begin();
        let timer = tokio::spawn(expired(requests, Duration::from_secs(2), Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!timer.is_finished(), "a request in flight keeps the connection");
        drop(request);
        timer.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(35));
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let raised = raise_fd_limit();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, hard, "the soft limit is the hard limit now");
        assert_eq!(raised, Some(soft));
    }
}
