//! The pooled HTTP client for one upstream: hyper over rustls, trusting the webpki roots plus an
//! optional extra CA file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

/// A pooled client speaking HTTP/1.1, and h2 where TLS negotiates it: one pool per worker, so a
/// request uses connections driven by its own worker's event loop.
#[derive(Clone)]
pub struct HttpClient {
    per_worker: Arc<[Client<HttpsConnector<HttpConnector>, Full<Bytes>>]>,
}

/// A failed exchange, classified for the fallback decision.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP or TLS connection could not be established.
    #[error("connect error: {0}")]
    Connect(String),
    /// The connection broke while sending or waiting for headers.
    #[error("request error: {0}")]
    Request(String),
}

impl HttpClient {
    /// Builds a client with a pool for each of `workers`. `ca_file` adds PEM trust roots for
    /// private endpoints.
    pub fn new(
        ca_file: Option<&Path>,
        connect_timeout: Duration,
        workers: usize,
    ) -> Result<Self, String> {
        let connector = connector(ca_file, connect_timeout)?;
        let per_worker = (0..workers.max(1))
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(connector.clone())
            })
            .collect();
        Ok(Self { per_worker })
    }

    /// Sends a request and waits for the response headers.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let client = &self.per_worker[crate::worker::current() % self.per_worker.len()];
        client.request(request).await.map_err(|e| {
            let detail = crate::error::chain(&e);
            if e.is_connect() { ClientError::Connect(detail) } else { ClientError::Request(detail) }
        })
    }
}

/// The connector every client of the proxy uses (upstreams, the trace exporter): http or https
/// through rustls with the webpki roots plus `ca_file`'s, HTTP/1.1 or h2 as TLS negotiates.
pub fn connector(
    ca_file: Option<&Path>,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let tls = tls_config(ca_file)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("no certificates found in {}", path.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
