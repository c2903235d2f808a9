//! `switchyard plugin push`: upload a component (and its signature, when there is one) to a
//! running proxy with `PUT /admin/plugins/{name}` and the admin bearer token. The proxy compiles
//! and probes it before anything goes live, and answers with its reload report or why it refused.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::net::TcpStream;

/// What the proxy answered.
#[derive(Debug)]
pub struct Pushed {
    pub status: u16,
    pub body: String,
}

/// PUT `wasm` as plugin `name` to the admin API at `admin` (`http://host:port`). `signature` is
/// the signature document (`<file>.sig`, one line of JSON), sent as is in
/// `x-switchyard-signature`.
pub async fn push(
    admin: &str,
    token: &str,
    name: &str,
    wasm: Vec<u8>,
    signature: Option<&[u8]>,
) -> Result<Pushed, String> {
    let base: http::Uri = admin.parse().map_err(|e| format!("admin URL {admin}: {e}"))?;
    if base.scheme_str() != Some("http") {
        return Err(format!("admin URL {admin}: only http:// is supported (the admin listener)"));
    }
    let authority = base.authority().ok_or_else(|| format!("admin URL {admin}: no host"))?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    tokio::spawn(conn);
    let mut req = Request::put(format!("/admin/plugins/{name}"))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/wasm");
    if let Some(sig) = signature {
        let value = http::HeaderValue::from_bytes(sig.trim_ascii())
            .map_err(|_| "the signature file is not one line of JSON".to_string())?;
        req = req.header(crate::admin::plugins::SIGNATURE_HEADER, value);
    }
    let req = req.body(Full::new(Bytes::from(wasm))).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("PUT to {authority}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Pushed { status, body: String::from_utf8_lossy(&body).into_owned() })
}
