//! A counting OTLP/HTTP trace sink for benchmarks: accepts `POST /v1/traces`, decodes each export
//! with `opentelemetry-proto` (so a count means the proxy really sent valid spans), counts exports
//! and spans, and answers 200. It runs on its own one-thread runtime, so a benchmark with a
//! synchronous `main` can start it beside its child processes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// What the sink received.
#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    spans: AtomicU64,
    /// Requests that were not a decodable OTLP trace export (answered 400).
    rejected: AtomicU64,
}

/// A running sink; it stops with the value.
pub struct Sink {
    /// The endpoint to configure as `otlp_endpoint` (`http://127.0.0.1:PORT`).
    pub url: String,
    counts: Arc<Counts>,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> Result<Self> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).context("otlp sink listener")?
        };
        runtime.spawn(serve(listener, counts.clone()));
        Ok(Self { url, counts, _runtime: runtime })
    }

    /// (exports, spans, rejected requests) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        let c = &self.counts;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        (load(&c.exports), load(&c.spans), load(&c.rejected))
    }
}

async fn serve(listener: tokio::net::TcpListener, counts: Arc<Counts>) {
    while let Ok((stream, _)) = listener.accept().await {
        let counts = counts.clone();
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let counts = counts.clone();
            async move {
                let status = receive(req, &counts).await;
                let mut response = http::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

async fn receive(req: http::Request<Incoming>, counts: &Counts) -> http::StatusCode {
    let export = match (req.method(), req.uri().path()) {
        (&http::Method::POST, "/v1/traces") => match req.into_body().collect().await {
            Ok(body) => ExportTraceServiceRequest::decode(body.to_bytes()).ok(),
            Err(_) => None,
        },
        _ => None,
    };
    let Some(export) = export else {
        counts.rejected.fetch_add(1, Ordering::Relaxed);
        return http::StatusCode::BAD_REQUEST;
    };
    let spans = export.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len());
    counts.spans.fetch_add(spans.sum::<usize>() as u64, Ordering::Relaxed);
    counts.exports.fetch_add(1, Ordering::Relaxed);
    http::StatusCode::OK
}
