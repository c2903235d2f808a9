//! Accepting connections: HTTP/1.1 and HTTP/2 on both listeners, optional TLS on the API
//! listener, header-read limits, the connection cap and deadlines ([`crate::connection`]), the API
//! listener shared by the workers, and graceful shutdown with a drain deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, TlsConfig};
use crate::connection::{self, Activity, ConnectionCap, Deadlines, Expiry};
use crate::env::EnvSource;
use crate::metrics::{ListenerLabels, WorkerLabels};
use crate::state::State;
use crate::worker::{self, Balancer, Handoff, Slot};
use crate::{admin, pipeline};

/// Largest request head accepted (HTTP/1.1 read buffer), as nginx's default large buffers.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Open admin connections at most; the admin listener is for probes, scrapers and operators.
const ADMIN_MAX_CONNECTIONS: usize = 256;

/// An HTTP/2 peer that does not answer a keep-alive ping within this is closed (hyper's default).
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a connection closed for idleness gets to say goodbye (HTTP/2 GOAWAY) before it is cut.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
    State(#[from] crate::state::StateError),
    #[error("watching the plugin directory: {0}")]
    Watch(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("sharing the API listener with the workers: {0}")]
    Listen(std::io::Error),
    #[error("starting a worker thread: {0}")]
    Worker(std::io::Error),
}

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy)]
enum Role {
    Api,
    Admin,
}

/// Serves until `shutdown` resolves, then stops accepting and waits for in-flight requests and
/// streams to finish, at most `server.drain_timeout_ms`.
///
/// The API listener is served by `server.workers` workers ([`crate::worker`]): the task that calls
/// `run` is worker 0 (and also serves the admin listener); the others are threads of their own,
/// each accepting from the same socket and serving its connections on its own event loop.
pub async fn run(
    config: Config,
    env: &dyn EnvSource,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let state = Arc::new(State::build(&config, env).await?);
    serve(config, state, listeners, shutdown).await
}

/// [`run`] with the state already built. The binary builds the state (plugins compiled and
/// probed) *before* it binds the listeners, so no client connects to a proxy that is still
/// loading, or that then fails to load and exits.
pub async fn serve(
    config: Config,
    state: Arc<State>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let workers = config.server.worker_count();
    let files = connection::raise_fd_limit();
    tracing::info!(open_file_limit = ?files, max_connections = config.server.max_connections, "limits");
    // Kept alive for as long as the proxy runs; dropping it stops the watch.
    let _watcher = match (&state.plugins, &config.plugins) {
        (Some(registry), Some(section)) if section.watch => Some(
            crate::plugin::DirWatcher::start(registry.clone(), &section.dir)
                .map_err(RunError::Watch)?,
        ),
        _ => None,
    };
    let tls = config.server.tls.as_ref().map(tls_acceptor).transpose()?;
    let builder = http_builder(&config);
    // `draining`: connections are asked to finish. `alive` closes once every connection is done.
    let (draining_tx, draining) = watch::channel(false);
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let (balancer, inboxes) = Balancer::new(workers);
    let acceptor = |role, tls, balancer, cap| Acceptor {
        connections: Connections {
            role,
            tls,
            builder: builder.clone(),
            state: state.clone(),
            deadlines: Deadlines {
                first: config.server.header_read_timeout(),
                idle: config.server.idle_timeout(),
                send: config.server.send_timeout(),
            },
            draining: draining.clone(),
            alive: alive.clone(),
        },
        balancer,
        cap,
    };
    let api_cap = ConnectionCap::new(config.server.max_connections);
    let api = acceptor(Role::Api, tls, Some(balancer), api_cap);
    let admin = acceptor(Role::Admin, None, None, ConnectionCap::new(ADMIN_MAX_CONNECTIONS));
    drop(alive);
    // `stop`: accept no more connections. `drained`: the drain is over, workers may end.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drained_tx, drained_rx) = watch::channel(false);
    let listener = listeners.api.into_std().map_err(RunError::Listen)?;
    let mut inboxes = inboxes.into_iter();
    let worker_0_inbox = inboxes.next();
    let others = Workers { api: &api, listener: &listener, stop: &stop_rx, drained: &drained_rx };
    let (threads, accepting) = others.start(inboxes)?;
    let listener = TcpListener::from_std(listener).map_err(RunError::Listen)?;
    let api = tokio::spawn(api.accept_loop(listener, worker_0_inbox, stop_rx.clone()));
    let admin = tokio::spawn(admin.accept_loop(listeners.admin, None, stop_rx));
    shutdown.await;
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = tokio::join!(api, admin);
    for stopped in accepting {
        let _ = stopped.await;
    }
    let _ = draining_tx.send(true);
    let deadline = config.server.drain_timeout();
    // Nothing is ever sent: `recv` returns once the last connection has dropped its sender.
    match tokio::time::timeout(deadline, all_closed.recv()).await {
        Ok(_) => tracing::info!("drained"),
        Err(_) => {
            tracing::warn!("drain deadline of {deadline:?} passed; closing remaining connections")
        }
    }
    let _ = drained_tx.send(true);
    for thread in threads {
        thread.join().await;
    }
    Ok(())
}

/// hyper's connection settings for both listeners: header limits, the HTTP/1.1 header-read
/// timeout, and HTTP/2 keep-alive pings.
fn http_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout())
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(Some(config.server.http2_keepalive_interval()))
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT);
    builder
}

/// What the workers after worker 0 share with it.
struct Workers<'a> {
    api: &'a Acceptor,
    listener: &'a std::net::TcpListener,
    stop: &'a watch::Receiver<bool>,
    drained: &'a watch::Receiver<bool>,
}

impl Workers<'_> {
    /// Starts worker i for each inbox i (from 1): a thread that accepts from a clone of the
    /// listener until `stop`, then keeps serving its connections until `drained`. Returns the
    /// threads and, per worker, a receiver that resolves once its accept loop has returned.
    fn start(
        &self,
        inboxes: impl Iterator<Item = mpsc::UnboundedReceiver<Handoff>>,
    ) -> Result<(Vec<worker::Worker>, Vec<oneshot::Receiver<()>>), RunError> {
        let (mut threads, mut accepting) = (Vec::new(), Vec::new());
        for (index, inbox) in (1..).zip(inboxes) {
            let listener = self.listener.try_clone().map_err(RunError::Listen)?;
            let (api, stop) = (self.api.clone(), self.stop.clone());
            let mut drained = self.drained.clone();
            let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
            accepting.push(stopped_rx);
            let serve = move || async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => api.accept_loop(listener, Some(inbox), stop).await,
                    Err(e) => tracing::error!(worker = index, "cannot serve the API listener: {e}"),
                }
                drop(stopped_tx);
                // Its connections keep running here until the drain is over.
                let _ = drained.wait_for(|over| *over).await;
            };
            threads.push(worker::spawn(index, serve).map_err(RunError::Worker)?);
        }
        Ok((threads, accepting))
    }
}

/// Accepts the connections of one listener on one worker and serves each on a task of that
/// worker.
#[derive(Clone)]
struct Acceptor {
    connections: Connections,
    /// Spreads the API listener's connections over the workers (`None` for the admin listener).
    balancer: Option<Arc<Balancer>>,
    /// Open connections at most on this listener, all workers together.
    cap: ConnectionCap,
}

/// What serving one connection needs.
#[derive(Clone)]
struct Connections {
    role: Role,
    tls: Option<TlsAcceptor>,
    builder: auto::Builder<TokioExecutor>,
    state: Arc<State>,
    /// The first request (`server.header_read_timeout_ms`, TLS and the HTTP/2 preface included),
    /// idleness, and a client that stops reading.
    deadlines: Deadlines,
    /// Turns true when the proxy drains: connections finish what is in flight and close.
    draining: watch::Receiver<bool>,
    /// Held by every connection task; the drain is over when the last one is dropped.
    alive: mpsc::Sender<()>,
}

impl Acceptor {
    /// Accepts until `stop` says so (or its sender is gone), and serves what it accepts and what
    /// other workers hand over through `inbox`.
    async fn accept_loop(
        self,
        listener: TcpListener,
        mut inbox: Option<mpsc::UnboundedReceiver<Handoff>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let handed = async {
                match inbox.as_mut() {
                    Some(inbox) => inbox.recv().await,
                    None => std::future::pending().await,
                }
            };
            let (stream, peer, slot, permit) = tokio::select! {
                _ = stop.changed() => return,
                Some(Handoff { stream, peer, slot, permit }) = handed => {
                    match TcpStream::from_std(stream) {
                        Ok(stream) => (stream, peer, Some(slot), permit),
                        Err(e) => {
                            tracing::warn!(%peer, "cannot take over a connection: {e}");
                            continue;
                        }
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Over the cap the connection is closed before anything is read from it.
                        let Some(permit) = self.cap.admit() else {
                            tracing::debug!(%peer, "connection refused: the connection cap is reached");
                            let listener = match self.connections.role {
                                Role::Api => "api",
                                Role::Admin => "admin",
                            };
                            let refused = &self.connections.state.metrics.connections_refused;
                            refused.get_or_create(&ListenerLabels { listener }).inc();
                            continue;
                        };
                        match self.place(stream, peer, permit) {
                            Some(placed) => placed,
                            None => continue,
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            if let Role::Api = self.connections.role {
                let worker = WorkerLabels { worker: worker::current() as u64 };
                self.connections.state.metrics.connections.get_or_create(&worker).inc();
            }
            let held = Held { _slot: slot, _permit: permit };
            tokio::spawn(self.connections.clone().serve(stream, peer, held));
        }
    }

    /// Decides which worker serves a connection this one accepted: `Some` to serve it here,
    /// `None` when it went to another worker.
    fn place(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> Option<(TcpStream, SocketAddr, Option<Slot>, OwnedSemaphorePermit)> {
        let Some(balancer) = &self.balancer else {
            return Some((stream, peer, None, permit));
        };
        let slot = balancer.assign(worker::current());
        if slot.worker() == worker::current() {
            return Some((stream, peer, Some(slot), permit));
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%peer, "cannot hand a connection over: {e}");
                return None;
            }
        };
        match balancer.hand_over(Handoff { stream, peer, slot, permit }) {
            Ok(()) => None,
            // That worker has stopped: serve it here after all.
            Err(Handoff { stream, peer, permit, .. }) => {
                let stream = TcpStream::from_std(stream).ok()?;
                Some((stream, peer, Some(balancer.keep(worker::current())), permit))
            }
        }
    }
}

/// What a connection holds until it closes: its place in the balance and under the cap.
struct Held {
    _slot: Option<Slot>,
    _permit: OwnedSemaphorePermit,
}

/// Either a plain TCP stream or a TLS one, so one code path serves both.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

impl Connections {
    /// Serves one connection (after the TLS handshake, with TLS) until it closes, it passes its
    /// first-request or idle deadline, or the drain ends it.
    async fn serve(self, stream: TcpStream, peer: SocketAddr, held: Held) {
        let _held = held;
        let _alive = self.alive;
        let (activity, watched) = Activity::new();
        let expired = connection::expired(watched, self.deadlines);
        tokio::pin!(expired);
        let io: Box<dyn Io> = match self.tls {
            None => Box::new(stream),
            Some(acceptor) => tokio::select! {
                _ = &mut expired => return tracing::debug!(%peer, "TLS handshake timed out"),
                accepted = acceptor.accept(stream) => match accepted {
                    Ok(stream) => Box::new(stream),
                    Err(e) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                },
            },
        };
        let (role, state) = (self.role, self.state);
        let service = service_fn(move |request| {
            let state = state.clone();
            let in_flight = activity.begin();
            async move {
                let handled = async move {
                    match role {
                        Role::Api => pipeline::handle(state, request).await,
                        Role::Admin => admin::handle(state, request).await,
                    }
                };
                // A bug that panics answers this request with a 500 and keeps the connection
                // and the worker, instead of cutting the client off without a word.
                let response =
                    AssertUnwindSafe(handled).catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!("a request handler panicked");
                        crate::error::ProxyError::Internal("the proxy hit a bug".into())
                            .into_response()
                    });
                Ok::<_, Infallible>(response.map(|body| connection::track(body, in_flight)))
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut draining = self.draining;
        let drain = async move {
            let signalled = draining.wait_for(|draining| *draining).await.is_ok();
            if !signalled {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = conn.as_mut() => result,
            expiry = &mut expired => {
                if expiry == Expiry::SendTimeout {
                    // Dropping the connection drops its responses, their upstream bodies and
                    // plugin instances.
                    return tracing::debug!(%peer, "closing a connection that stopped reading");
                }
                tracing::debug!(%peer, "closing a connection with no request in time");
                conn.as_mut().graceful_shutdown();
                match tokio::time::timeout(CLOSE_GRACE, conn).await {
                    Ok(result) => result,
                    Err(_) => Ok(()),
                }
            }
            () = drain => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended with an error: {e}");
        }
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
