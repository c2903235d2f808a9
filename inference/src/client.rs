//! A small OpenAI-protocol HTTP client for this crate's tests and benchmark: JSON requests and
//! SSE streams read event by event with arrival times. Not used by the service itself.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("reading the body failed: {0}")]
    Body(#[from] hyper::Error),
    #[error("building the request failed: {0}")]
    Http(#[from] http::Error),
    #[error("bad JSON ({0}): {1}")]
    Json(serde_json::Error, String),
    #[error("server is not ready after {0:?}")]
    NotReady(Duration),
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    /// Sent with every request (e.g. a `traceparent`).
    headers: HeaderMap,
}

/// A plain response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Json(e, String::from_utf8_lossy(&self.body).into_owned()))
    }
}

/// What a whole SSE stream carried.
#[derive(Debug, Default)]
pub struct Streamed {
    /// Concatenated content (chat `delta.content` or completion `text`).
    pub text: String,
    /// Every `data:` payload but `[DONE]`, parsed.
    pub chunks: Vec<Value>,
    pub finish_reason: Option<String>,
    pub usage: Option<Value>,
    pub done: bool,
    /// When the first non-empty content arrived, measured from the request.
    pub first_content: Option<Duration>,
    /// When the last chunk arrived, measured from the request.
    pub elapsed: Duration,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        // A fresh connection per request: no race with a server closing an idle keep-alive
        // connection (llama-server does), and a dropped stream never poisons a pooled one.
        let http =
            HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http();
        Self { http, base: format!("http://{addr}"), headers: HeaderMap::new() }
    }

    /// This client, sending `headers` with every request too.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))?;
        req.headers_mut().extend(self.headers.clone());
        Ok(self.http.request(req).await?)
    }

    pub async fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let resp = self.send(Method::GET, path, None).await?;
        let (parts, body) = resp.into_parts();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await?.to_bytes(),
        })
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply, ClientError> {
        let resp = self.send(Method::POST, path, Some(body)).await?;
        let (parts, body) = resp.into_parts();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await?.to_bytes(),
        })
    }

    /// Opens a stream; the caller reads events from it, or drops it to disconnect.
    pub async fn open_stream(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, SseReader), ClientError> {
        let start = Instant::now();
        let resp = self.send(Method::POST, path, Some(body)).await?;
        let status = resp.status();
        Ok((status, SseReader { body: resp.into_body(), buf: Vec::new(), start }))
    }

    /// Sends a streamed request and reads it to the end.
    pub async fn stream(&self, path: &str, body: &Value) -> Result<Streamed, ClientError> {
        let (_, mut reader) = self.open_stream(path, body).await?;
        let mut out = Streamed::default();
        while let Some(data) = reader.next_data().await? {
            out.elapsed = reader.start.elapsed();
            if data == "[DONE]" {
                out.done = true;
                continue;
            }
            let chunk: Value =
                serde_json::from_str(&data).map_err(|e| ClientError::Json(e, data.clone()))?;
            let choice = &chunk["choices"][0];
            let piece =
                choice["delta"]["content"].as_str().or(choice["text"].as_str()).unwrap_or("");
            if !piece.is_empty() && out.first_content.is_none() {
                out.first_content = Some(reader.start.elapsed());
            }
            out.text.push_str(piece);
            if let Some(r) = choice["finish_reason"].as_str() {
                out.finish_reason = Some(r.to_owned());
            }
            if chunk.get("usage").is_some_and(|u| !u.is_null()) {
                out.usage = Some(chunk["usage"].clone());
            }
            out.chunks.push(chunk);
        }
        Ok(out)
    }

    /// Polls /healthz until it says ready.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ClientError> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.get("/healthz").await.is_ok_and(|r| r.status == StatusCode::OK) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ClientError::NotReady(timeout))
    }

    /// A metric's value from /metrics (the first sample whose name matches exactly).
    pub async fn metric(&self, name: &str) -> Result<f64, ClientError> {
        let reply = self.get("/metrics").await?;
        let text = String::from_utf8_lossy(&reply.body);
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0.0))
    }
}

/// Reads `data:` payloads from an SSE body as they arrive.
pub struct SseReader {
    body: Incoming,
    buf: Vec<u8>,
    start: Instant,
}

impl SseReader {
    /// The next event's data, or `None` at the end of the body.
    pub async fn next_data(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                return Ok(Some(data.join("\n")));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                None => return Ok(None),
            }
        }
    }
}
