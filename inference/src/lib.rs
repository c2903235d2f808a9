//! `switchyard-inference`: an OpenAI-compatible llama.cpp inference service with continuous
//! batching and a prompt-prefix cache.
//!
//! Layout:
//! - `config`: command-line flags and their checks;
//! - `api`: request bodies parsed into typed form, unknown parameters refused;
//! - `engine`: the llama.cpp thread: decode loop, slots, prefix cache, sampling;
//! - `http`: routes and handlers; `sse`: streamed answers; `openai`: response shapes;
//! - `metrics`: Prometheus metrics; `error`: errors and their HTTP form;
//! - `trace`: OpenTelemetry spans per request (queue wait, prefill, decode), exported over OTLP.
//!
//! [`run`] serves on a listener the caller bound, until `shutdown` resolves, so tests can start
//! the service in-process on 127.0.0.1:0.

pub mod api;
pub mod client;
pub mod config;
pub mod engine;
pub mod error;
pub mod http;
pub mod metrics;
pub mod openai;
pub mod sse;
pub mod trace;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use config::Config;
pub use error::Error;

use engine::{Engine, Status};
use http::App;
use metrics::Metrics;

/// How long connections get to finish after shutdown before they are dropped.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves the API on `listener` until `shutdown` resolves. The model loads in the background;
/// /healthz says "loading" until it is ready. Returns an error if the model fails to load.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    let tracer = trace::Tracer::start(&config.telemetry)?;
    let mut metrics = Metrics::new();
    if let Some(tracer) = &tracer {
        metrics.register_trace_export(tracer.counters());
    }
    let metrics = Arc::new(metrics);
    let engine = Engine::start(&config, metrics.clone())?;
    let status = engine.status();
    let app = Arc::new(App {
        engine,
        metrics,
        model_id: config.model_id(),
        started: openai::unix_now(),
        default_max_tokens: (config.n_predict > 0).then_some(config.n_predict),
        tracer,
    });
    let graceful = GracefulShutdown::new();
    let result = accept_loop(&app, &listener, &graceful, status, shutdown).await;
    drop(listener);
    // Stop the decode loop first: streams in flight end, so connections can close.
    let stopper = app.clone();
    let _ = tokio::task::spawn_blocking(move || stopper.engine.shutdown()).await;
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    result
}

/// Accepts connections until shutdown, or until the model fails to load.
async fn accept_loop(
    app: &Arc<App>,
    listener: &TcpListener,
    graceful: &GracefulShutdown,
    mut status: watch::Receiver<Status>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut watching_status = true;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve(app, stream, &builder, graceful),
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => return Ok(()),
            changed = status.changed(), if watching_status => {
                if changed.is_err() {
                    watching_status = false;
                } else if let Status::Failed(e) = &*status.borrow() {
                    return Err(Error::Load(e.clone()));
                }
            }
        }
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2) on its own task, watched for graceful shutdown.
fn serve(
    app: &Arc<App>,
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let app = app.clone();
    let service = service_fn(move |req| http::handle(app.clone(), req));
    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
