//! Accepting connections: HTTP/1.1 and HTTP/2 on both listeners, optional TLS on the API
//! listener, header-read limits, and graceful shutdown with a drain deadline.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsConfig};
use crate::env::EnvSource;
use crate::state::State;
use crate::{admin, pipeline};

/// Largest request head accepted (HTTP/1.1 read buffer), as nginx's default large buffers.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The two bound listeners. Binding is the caller's job so tests can use port 0.
#[derive(Debug)]
pub struct Listeners {
    pub api: TcpListener,
    pub admin: TcpListener,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamBuildError),
    #[error("TLS: {0}")]
    Tls(String),
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy)]
enum Role {
    Api,
    Admin,
}

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight requests and
/// streams to finish, at most `server.drain_timeout_ms`.
pub async fn run(
    config: Config,
    env: &dyn EnvSource,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let state = Arc::new(State::build(&config, env)?);
    let tls = config.server.tls.as_ref().map(tls_acceptor).transpose()?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout())
        .max_buf_size(MAX_HEADER_BYTES);
    builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEADER_BYTES as u32);
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let handshake_timeout = config.server.header_read_timeout();
    let api = tokio::spawn(accept_loop(
        listeners.api,
        Role::Api,
        tls,
        builder.clone(),
        state.clone(),
        graceful.clone(),
        stop_rx.clone(),
        handshake_timeout,
    ));
    let admin = tokio::spawn(accept_loop(
        listeners.admin,
        Role::Admin,
        None,
        builder,
        state,
        graceful.clone(),
        stop_rx,
        handshake_timeout,
    ));
    shutdown.await;
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(api, admin);
    let drain = config.server.drain_timeout();
    // The accept loops have returned, so only connection watchers remain.
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
        return Ok(());
    };
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => tracing::info!("drained"),
        Err(_) => {
            tracing::warn!("drain deadline of {drain:?} passed; closing remaining connections")
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: TcpListener,
    role: Role,
    tls: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    state: Arc<State>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
    handshake_timeout: Duration,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |request| {
            let state = state.clone();
            async move {
                Ok::<_, Infallible>(match role {
                    Role::Api => pipeline::handle(state, request).await,
                    Role::Admin => admin::handle(state, request).await,
                })
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended with an error: {e}");
            }
        });
    }
}

fn tls_acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, RunError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| RunError::Tls(format!("{what}: {e}"));
    let cert_pem = std::fs::read(&tls.cert).map_err(|e| fail("reading server.tls.cert", &e))?;
    let key_pem = std::fs::read(&tls.key).map_err(|e| fail("reading server.tls.key", &e))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("parsing server.tls.cert", &e))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| fail("parsing server.tls.key", &e))?
        .ok_or_else(|| RunError::Tls("server.tls.key holds no private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| fail("server certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
