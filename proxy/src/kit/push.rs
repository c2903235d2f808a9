//! `switchyard plugin push`: upload a component (and its signature, when there is one) to a
//! running proxy with `PUT /admin/plugins/{name}` and the admin bearer token, over http or, to
//! an admin listener behind a TLS terminator, https. The proxy compiles
//! and probes it before anything goes live, and answers with its reload report or why it refused.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Longest the connection (and TLS handshake) to the admin API may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the proxy answered.
#[derive(Debug)]
pub struct Pushed {
    pub status: u16,
    pub body: String,
}

/// PUT `wasm` as plugin `name` to the admin API at `admin` (`http://host:port`, or
/// `https://...` when a TLS terminator fronts the admin listener: verified against the webpki
/// roots and `ca_file`, a PEM file of extra roots). `signature` is the signature document
/// (`<file>.sig`, one line of JSON), sent as is in `x-switchyard-signature`.
pub async fn push(
    admin: &str,
    token: &str,
    name: &str,
    wasm: Vec<u8>,
    signature: Option<&[u8]>,
    ca_file: Option<&Path>,
) -> Result<Pushed, String> {
    let base: http::Uri = admin.parse().map_err(|e| format!("admin URL {admin}: {e}"))?;
    if !matches!(base.scheme_str(), Some("http" | "https")) {
        return Err(format!("admin URL {admin}: must be http:// or https://"));
    }
    let authority = base.authority().ok_or_else(|| format!("admin URL {admin}: no host"))?.clone();
    let connector = crate::upstream::connector(ca_file, CONNECT_TIMEOUT)?;
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let root = admin.trim_end_matches('/');
    let mut req = Request::put(format!("{root}/admin/plugins/{name}"))
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/wasm");
    if let Some(sig) = signature {
        let value = http::HeaderValue::from_bytes(sig.trim_ascii())
            .map_err(|_| "the signature file is not one line of JSON".to_string())?;
        req = req.header(crate::admin::plugins::SIGNATURE_HEADER, value);
    }
    let req = req.body(Full::new(Bytes::from(wasm))).map_err(|e| e.to_string())?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("PUT to {authority}: {}", crate::error::chain(&e)))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Pushed { status, body: String::from_utf8_lossy(&body).into_owned() })
}
