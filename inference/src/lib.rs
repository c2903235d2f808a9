//! `switchyard-inference`: an OpenAI-compatible llama.cpp inference service with continuous
//! batching and a prompt-prefix cache.
//!
//! Layout:
//! - `config`: command-line flags and their checks;
//! - `api`: request bodies parsed into typed form, unknown parameters refused;
//! - `engine`: the llama.cpp thread: decode loop, slots, prefix cache, sampling;
//! - `http`: routes and handlers; `sse`: streamed answers; `openai`: response shapes;
//! - `metrics`: Prometheus metrics; `error`: errors and their HTTP form.
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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

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
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::start(&config, metrics.clone())?;
    let mut status = engine.status();
    let app =
        Arc::new(App { engine, metrics, model_id: config.model_id(), started: openai::unix_now() });
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut watching_status = true;
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |req| http::handle(app.clone(), req));
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break Ok(()),
            changed = status.changed(), if watching_status => {
                if changed.is_err() {
                    watching_status = false;
                } else if let Status::Failed(e) = &*status.borrow() {
                    break Err(Error::Load(e.clone()));
                }
            }
        }
    };
    drop(listener);
    // Stop the decode loop first: streams in flight end, so connections can close.
    let stopper = app.clone();
    let _ = tokio::task::spawn_blocking(move || stopper.engine.shutdown()).await;
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    result
}
