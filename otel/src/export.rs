//! Sending finished spans to an OTLP collector, off the request path: requests hand their spans
//! to a bounded queue and never wait; one exporter thread batches them (up to [`BATCH_SPANS`], or
//! what arrived within [`BATCH_DELAY`]) and sends each batch as protobuf, over OTLP/HTTP
//! (`POST /v1/traces`) or OTLP/gRPC (`TraceService/Export` over HTTP/2: a `grpc://` endpoint,
//! or port 4317). A full queue drops the spans and counts them; a dead collector costs failed
//! exports, counted, never a request's time. The caller brings the connector for `http(s)://`
//! endpoints (the proxy's speaks TLS); [`Exporter::start_plain`] has clear text only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::otlp;
use crate::span::Span;

/// Requests' span sets that may wait for the exporter at once.
const QUEUE: usize = 4096;
/// Most spans in one export.
pub const BATCH_SPANS: usize = 512;
/// Longest a span waits for its batch to fill.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Longest a connection to the collector may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
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

impl ExportCounters {
    /// Registers the counters as `trace_spans_dropped`, `trace_spans_exported` and
    /// `trace_exports_failed` (each `_total`, under the registry's prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "trace_spans_dropped",
            "Spans dropped because the exporter's queue was full",
            self.dropped.clone(),
        );
        registry.register(
            "trace_spans_exported",
            "Spans the collector accepted",
            self.exported.clone(),
        );
        registry.register(
            "trace_exports_failed",
            "Span exports that failed (their spans are lost)",
            self.failed.clone(),
        );
    }
}

/// Builds a request's spans on the exporter thread.
pub type Build = Box<dyn FnOnce() -> Vec<Span> + Send>;

/// What waits in the queue: spans, or what builds them once the exporter thread takes it.
enum Queued {
    Spans(Vec<Span>),
    /// The number of spans it was counted as, and the builder.
    Later(usize, Build),
}

impl Queued {
    fn counted(&self) -> usize {
        match self {
            Self::Spans(spans) => spans.len(),
            Self::Later(count, _) => *count,
        }
    }
}

/// The sending side; dropping it exports what is queued and stops the thread.
pub struct Exporter {
    spans: Option<SyncSender<Queued>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Spans queued and not yet taken by the thread: a request wakes the thread only when this
    /// crosses [`BATCH_SPANS`], not for each span set (a wake-up per request cost the request
    /// path a futex call and the 2 cores a context switch each).
    queued: Arc<AtomicUsize>,
    pub counters: ExportCounters,
}

impl Exporter {
    /// Starts the exporter thread for `endpoint` (`http(s)://host:port`, to which
    /// `/v1/traces` is added when it has no path), reaching OTLP/HTTP and TLS endpoints through
    /// `connector`.
    pub fn start<C>(endpoint: &str, service_name: String, connector: C) -> Result<Self, String>
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let target = Target::parse(endpoint)?;
        let client = Transport::new(&target, connector);
        let uri = target.uri;
        let (spans, queue) = sync_channel(QUEUE);
        let counters = ExportCounters::default();
        let shared = counters.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || run(queue, uri, client, service_name, shared, &taken))
            .map_err(|e| e.to_string())?;
        Ok(Self { spans: Some(spans), thread: Some(thread), queued, counters })
    }

    /// [`Exporter::start`] with a clear-text connector: `https://` endpoints are refused.
    pub fn start_plain(endpoint: &str, service_name: String) -> Result<Self, String> {
        if Target::parse(endpoint)?.uri.scheme_str() == Some("https") {
            return Err(format!(
                "otlp endpoint {endpoint}: https is not supported here (this build has no TLS); \
                 use http:// or grpc:// (a local collector or agent)"
            ));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Self::start(endpoint, service_name, connector)
    }

    /// Queues one request's spans; drops them (counted) when the exporter is behind.
    pub fn submit(&self, spans: Vec<Span>) {
        self.queue(Queued::Spans(spans));
    }

    /// Queues what builds one request's `count` spans; the exporter thread runs `build` when it
    /// takes it, so a request pays for a box and a send, not for its spans' strings (the proxy
    /// finishes a record before hyper flushes the response's last bytes).
    pub fn submit_later(&self, count: usize, build: Build) {
        self.queue(Queued::Later(count, build));
    }

    fn queue(&self, item: Queued) {
        let Some(queue) = &self.spans else { return };
        let count = item.counted();
        // Counted before the send, so the thread never takes more than was counted.
        let before = self.queued.fetch_add(count, Ordering::Relaxed);
        match queue.try_send(item) {
            Ok(()) => {
                if before < BATCH_SPANS
                    && before + count >= BATCH_SPANS
                    && let Some(thread) = &self.thread
                {
                    thread.thread().unpark();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(count, Ordering::Relaxed);
                self.counters.dropped.inc_by(count as u64);
            }
        }
    }
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.spans = None;
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// OTLP's two transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `POST /v1/traces`, `application/x-protobuf`.
    Http,
    /// `TraceService/Export` over HTTP/2, each message framed as gRPC does.
    Grpc,
}

/// The gRPC method that takes spans.
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where and how spans are sent.
struct Target {
    uri: Uri,
    protocol: Protocol,
    /// Plain-text HTTP/2 (h2c), for `grpc://` and `http://…:4317`.
    cleartext_h2: bool,
}

impl Target {
    /// `http(s)://host:port[/path]` is OTLP/HTTP (`/v1/traces` added when there is no path),
    /// except on port 4317, OTLP/gRPC's; `grpc://host:port` is OTLP/gRPC in clear text.
    fn parse(endpoint: &str) -> Result<Self, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("telemetry.otlp_endpoint: {e}");
        let (endpoint, grpc_scheme) = match endpoint.strip_prefix("grpc://") {
            Some(rest) => (format!("http://{rest}"), true),
            None => (endpoint.to_string(), false),
        };
        let uri: Uri = endpoint.parse().map_err(|e| invalid(&e))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid(&"must be http://, https:// or grpc://")),
        };
        let base = endpoint.trim_end_matches('/');
        if grpc_scheme || uri.port_u16() == Some(4317) {
            let uri = format!("{base}{GRPC_EXPORT}").parse().map_err(|e| invalid(&e))?;
            return Ok(Self { uri, protocol: Protocol::Grpc, cleartext_h2: !tls });
        }
        let uri = if uri.path() == "/" || uri.path().is_empty() {
            format!("{base}/v1/traces").parse().map_err(|e| invalid(&e))?
        } else {
            uri
        };
        Ok(Self { uri, protocol: Protocol::Http, cleartext_h2: false })
    }
}

/// The client for a target: the caller's connector (HTTP/1.1, and h2 where TLS negotiates it),
/// or plain HTTP/2.
enum Transport<C> {
    Pooled(Client<C, Full<Bytes>>, Protocol),
    H2c(Client<HttpConnector, Full<Bytes>>),
}

impl<C: Connect + Clone + Send + Sync + 'static> Transport<C> {
    fn new(target: &Target, connector: C) -> Self {
        if target.cleartext_h2 {
            let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
            return Self::H2c(client);
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self::Pooled(client, target.protocol)
    }

    fn protocol(&self) -> Protocol {
        match self {
            Self::Pooled(_, protocol) => *protocol,
            Self::H2c(_) => Protocol::Grpc,
        }
    }

    /// Sends one batch; `Err` says why it was not accepted.
    async fn export(&self, uri: &Uri, message: Vec<u8>) -> Result<(), String> {
        let protocol = self.protocol();
        let (content_type, body) = match protocol {
            Protocol::Http => ("application/x-protobuf", Bytes::from(message)),
            Protocol::Grpc => ("application/grpc", grpc_frame(&message)),
        };
        let mut request = Request::post(uri.clone())
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        if protocol == Protocol::Grpc {
            request.headers_mut().insert(header::TE, http::HeaderValue::from_static("trailers"));
        }
        let response = match self {
            Self::Pooled(client, _) => {
                client.request(request).await.map_err(|e| crate::error_chain(&e))?
            }
            Self::H2c(client) => {
                client.request(request).await.map_err(|e| crate::error_chain(&e))?
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the collector answered {status}"));
        }
        if protocol == Protocol::Http {
            return Ok(());
        }
        // gRPC reports its outcome in `grpc-status`: in the trailers, or in the headers of a
        // trailers-only answer.
        let headers = response.headers().clone();
        let collected = response.into_body().collect().await.map_err(|e| e.to_string())?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let grpc_status = trailers.get("grpc-status").or_else(|| headers.get("grpc-status"));
        match grpc_status.and_then(|v| v.to_str().ok()) {
            Some("0") => Ok(()),
            Some(code) => Err(format!("the collector answered grpc-status {code}")),
            None => Err("the collector's answer has no grpc-status".into()),
        }
    }
}

/// One gRPC message: not compressed, its length (big-endian u32), the protobuf bytes.
fn grpc_frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

/// The exporter thread: sleeps until a batch is full (a request wakes it then) or
/// [`BATCH_DELAY`] has passed, takes what is queued and sends it; when every sender is gone it
/// sends what is left and ends. It never blocks on the queue itself: a receiver blocked there
/// is woken by every send.
fn run<C: Connect + Clone + Send + Sync + 'static>(
    queue: Receiver<Queued>,
    uri: Uri,
    client: Transport<C>,
    service: String,
    counters: ExportCounters,
    queued: &AtomicUsize,
) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tracing::error!("telemetry: the exporter's runtime did not start; spans are dropped");
        return;
    };
    let mut batch: Vec<Span> = Vec::new();
    let mut due = Instant::now() + BATCH_DELAY;
    loop {
        let open = take_queued(&queue, &mut batch, queued);
        if batch.len() >= BATCH_SPANS || Instant::now() >= due || !open {
            for chunk in batch.chunks(BATCH_SPANS) {
                runtime.block_on(send(&client, &uri, &service, chunk, &counters));
            }
            batch.clear();
            due = Instant::now() + BATCH_DELAY;
        }
        if !open {
            return;
        }
        std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
    }
}

/// Moves every queued span set into `batch` (building those queued as builders); false once
/// every sender is gone.
fn take_queued(queue: &Receiver<Queued>, batch: &mut Vec<Span>, queued: &AtomicUsize) -> bool {
    loop {
        match queue.try_recv() {
            Ok(item) => {
                queued.fetch_sub(item.counted(), Ordering::Relaxed);
                match item {
                    Queued::Spans(spans) => batch.extend(spans),
                    Queued::Later(_, build) => batch.extend(build()),
                }
            }
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

async fn send<C: Connect + Clone + Send + Sync + 'static>(
    client: &Transport<C>,
    uri: &Uri,
    service: &str,
    spans: &[Span],
    counters: &ExportCounters,
) {
    let message = otlp::export_request(service, spans);
    match tokio::time::timeout(EXPORT_TIMEOUT, client.export(uri, message)).await {
        Ok(Ok(())) => {
            counters.exported.inc_by(spans.len() as u64);
        }
        Ok(Err(why)) => {
            counters.failed.inc();
            tracing::debug!("telemetry: export failed: {why}");
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
    fn endpoints_choose_the_path_and_the_protocol() {
        let target =
            |e: &str| Target::parse(e).map(|t| (t.uri.to_string(), t.protocol, t.cleartext_h2));
        let http = |uri: &str| Ok((uri.to_string(), Protocol::Http, false));
        assert_eq!(target("http://127.0.0.1:4318"), http("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(target("http://127.0.0.1:4318/"), http("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(
            target("https://c.example/otlp/v1/traces"),
            http("https://c.example/otlp/v1/traces")
        );
        let grpc = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        let export = |base: &str, h2c| Ok((format!("{base}{grpc}"), Protocol::Grpc, h2c));
        assert_eq!(target("grpc://127.0.0.1:4317"), export("http://127.0.0.1:4317", true));
        assert_eq!(target("http://127.0.0.1:4317/"), export("http://127.0.0.1:4317", true));
        assert_eq!(target("https://c.example:4317"), export("https://c.example:4317", false));
        assert!(target("ftp://x").is_err());
        assert!(target("not a url").is_err());
    }

    #[test]
    fn the_plain_exporter_refuses_tls_endpoints() {
        let refused = Exporter::start_plain("https://c.example:4318", "s".into());
        assert!(refused.is_err_and(|e| e.contains("https is not supported")));
        assert!(Exporter::start_plain("http://127.0.0.1:4318", "s".into()).is_ok());
    }

    #[test]
    fn a_grpc_message_is_framed_with_its_length() {
        assert_eq!(grpc_frame(b"abc")[..], [0, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
