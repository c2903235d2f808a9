//! Sending finished spans to an OTLP/HTTP collector, off the request path: requests hand their
//! spans to a bounded queue and never wait; one exporter thread batches them (up to
//! [`BATCH_SPANS`], or what arrived within [`BATCH_DELAY`]) and POSTs each batch as protobuf. A
//! full queue drops the spans and counts them; a dead collector costs failed exports, counted,
//! never a request's time.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use prometheus_client::metrics::counter::Counter;

use super::otlp;
use super::span::Span;
use crate::upstream::HttpClient;

/// Requests' span sets that may wait for the exporter at once.
const QUEUE: usize = 4096;
/// Most spans in one export.
pub const BATCH_SPANS: usize = 512;
/// Longest a span waits for its batch to fill.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter's counters, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ExportCounters {
    /// Spans dropped because the queue was full.
    pub dropped: Counter,
    /// Spans the collector accepted (a 2xx).
    pub exported: Counter,
    /// Exports that failed (no connection, a timeout, a non-2xx answer); their spans are lost.
    pub failed: Counter,
}

/// The sending side; dropping it exports what is queued and stops the thread.
#[derive(Debug)]
pub struct Exporter {
    spans: Option<SyncSender<Vec<Span>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: ExportCounters,
}

impl Exporter {
    /// Starts the exporter thread for `endpoint` (`http(s)://host:port`, to which
    /// `/v1/traces` is added when it has no path).
    pub fn start(endpoint: &str, service_name: String) -> Result<Self, String> {
        let uri = traces_uri(endpoint)?;
        let client = HttpClient::new(None, Duration::from_secs(2), 1)?;
        let (spans, queue) = sync_channel(QUEUE);
        let counters = ExportCounters::default();
        let shared = counters.clone();
        let thread = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || run(queue, uri, client, service_name, shared))
            .map_err(|e| e.to_string())?;
        Ok(Self { spans: Some(spans), thread: Some(thread), counters })
    }

    /// Queues one request's spans; drops them (counted) when the exporter is behind.
    pub fn submit(&self, spans: Vec<Span>) {
        let Some(queue) = &self.spans else { return };
        let count = spans.len() as u64;
        match queue.try_send(spans) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc_by(count);
            }
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.spans = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `endpoint` with `/v1/traces` when it names no path.
fn traces_uri(endpoint: &str) -> Result<Uri, String> {
    let uri: Uri = endpoint.parse().map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("telemetry.otlp_endpoint: must be http:// or https://".into()),
    }
    if uri.path() == "/" || uri.path().is_empty() {
        let base = endpoint.trim_end_matches('/');
        return format!("{base}/v1/traces")
            .parse()
            .map_err(|e| format!("telemetry.otlp_endpoint: {e}"));
    }
    Ok(uri)
}

/// The exporter thread: batches and sends until every sender is gone, then sends what is left.
fn run(
    queue: Receiver<Vec<Span>>,
    uri: Uri,
    client: HttpClient,
    service: String,
    counters: ExportCounters,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::error!("telemetry: the exporter's runtime did not start; spans are dropped");
        return;
    };
    let mut batch: Vec<Span> = Vec::new();
    let mut open = true;
    while open {
        let first = match queue.recv() {
            Ok(spans) => spans,
            Err(_) => break,
        };
        batch.extend(first);
        let due = Instant::now() + BATCH_DELAY;
        while batch.len() < BATCH_SPANS {
            match queue.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(spans) => batch.extend(spans),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        for chunk in batch.chunks(BATCH_SPANS) {
            runtime.block_on(send(&client, &uri, &service, chunk, &counters));
        }
        batch.clear();
    }
}

async fn send(
    client: &HttpClient,
    uri: &Uri,
    service: &str,
    spans: &[Span],
    counters: &ExportCounters,
) {
    let body = Bytes::from(otlp::export_request(service, spans));
    let request = Request::post(uri.clone())
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(body));
    let Ok(request) = request else { return };
    let outcome = tokio::time::timeout(EXPORT_TIMEOUT, client.send(request)).await;
    match outcome {
        Ok(Ok(response)) if response.status().is_success() => {
            counters.exported.inc_by(spans.len() as u64);
        }
        Ok(Ok(response)) => {
            counters.failed.inc();
            tracing::debug!(status = %response.status(), "telemetry: the collector refused a batch");
        }
        Ok(Err(e)) => {
            counters.failed.inc();
            tracing::debug!("telemetry: export failed: {e}");
        }
        Err(_) => {
            counters.failed.inc();
            tracing::debug!("telemetry: export timed out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint() {
        let uri = |e: &str| traces_uri(e).map(|u| u.to_string());
        assert_eq!(uri("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(uri("http://127.0.0.1:4318/").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(
            uri("https://c.example/otlp/v1/traces").unwrap(),
            "https://c.example/otlp/v1/traces"
        );
        assert!(uri("grpc://127.0.0.1:4317").is_err());
        assert!(uri("not a url").is_err());
    }
}
