//! A small OpenAI-compatible upstream for tests and benchmarks: plain and streamed chat,
//! completions, embeddings, images and models, and switchable misbehaviour (fail, stall, 429/500,
//! break a stream). It records every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// How the mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Answers correctly.
    Normal,
    /// Answers every request with this status and an OpenAI error body.
    Status(u16),
    /// Never sends response headers.
    Stall,
    /// Streams: sends headers and a role-only preamble event, then nothing.
    StallBeforeFirstContent,
    /// Streams: sends this many events, then breaks the connection.
    FailAfterEvents(usize),
    /// Streams: sends all content, then closes without `[DONE]`.
    EndWithoutDone,
    /// Streams: waits this long before each event.
    SlowEvents(Duration),
    /// Answers normally, but with this text instead of echoing the request.
    Says(String),
    /// As `Says`, but the answer is cut off: `finish_reason` is "length".
    SaysCutOff(String),
    /// Answers with these pieces joined; a stream sends one content event per piece.
    SaysInPieces(Vec<String>),
    /// Answers every request with this status and an OpenAI error body with this message.
    StatusSaying(u16, String),
    /// Answers 200 with an OpenAI error object as the body (as some providers do).
    OkWithErrorBody,
    /// Streams: one content event, then an error event, then `[DONE]`.
    ErrorEventMidStream,
    /// Answers a plain chat request with exactly this body (multiple choices, tool calls).
    Replies(Value),
    /// Answers a streamed chat request with exactly these chunks, then `[DONE]`.
    Chunks(Vec<Value>),
    /// Answers normally, but a stream whose last user message contains "slowly" waits this long
    /// before each event (one mock serves fast and slow clients at once, as in the soak).
    SlowIfAsked(Duration),
    /// Streams normally but never sends a usage chunk, even when asked for one (as upstreams
    /// that ignore `stream_options` do).
    IgnoresUsageOption,
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: http::Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// The body as JSON (`Value::Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Shared {
    name: String,
    behavior: Mutex<Behavior>,
    received: Mutex<Vec<Received>>,
    /// Whether requests are recorded (see [`MockUpstream::forget_requests`]).
    record: AtomicBool,
    /// Set by [`MockUpstream::kill`]: every open connection is closed.
    killed: tokio::sync::watch::Sender<bool>,
    /// Open (true) unless [`MockUpstream::hold`] closed it: while closed, requests are recorded
    /// and then wait, so a test can hold many in flight at once (their admissions all made).
    gate: tokio::sync::watch::Sender<bool>,
}

/// A running mock upstream on 127.0.0.1.
pub struct MockUpstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    /// For TLS mocks: the CA certificate (PEM file) that signed the server certificate.
    pub ca_file: Option<PathBuf>,
    scheme: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// Starts a cleartext mock named `name` on 127.0.0.1:0.
    pub async fn start(name: &str, behavior: Behavior) -> Self {
        Self::spawn(name, behavior, None, None).await
    }

    /// Starts an HTTPS mock whose certificate is signed by a CA generated here (see `ca_file`).
    pub async fn start_tls(name: &str, behavior: Behavior) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (acceptor, ca_pem) = crate::tls::test_server_tls();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write ca");
        Self::spawn(name, behavior, Some(acceptor), Some((dir, ca_file))).await
    }

    /// Serves on an already-bound listener (the benchmark binds a fixed port).
    pub fn serve(listener: TcpListener, name: &str, behavior: Behavior) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            behavior: Mutex::new(behavior),
            received: Mutex::new(Vec::new()),
            record: AtomicBool::new(true),
            killed: tokio::sync::watch::Sender::new(false),
            gate: tokio::sync::watch::Sender::new(true),
        });
        let task = tokio::spawn(accept(listener, shared.clone(), None));
        Self { addr, shared, task, ca_file: None, scheme: "http", _dir: None }
    }

    async fn spawn(
        name: &str,
        behavior: Behavior,
        tls: Option<tokio_rustls::TlsAcceptor>,
        dir: Option<(tempfile::TempDir, PathBuf)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
        let mut mock = Self::serve(listener, name, behavior);
        if tls.is_some() {
            mock.task.abort();
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
            mock.addr = listener.local_addr().expect("local addr");
            mock.task = tokio::spawn(accept(listener, mock.shared.clone(), tls));
            mock.scheme = "https";
        }
        if let Some((dir, ca_file)) = dir {
            mock.ca_file = Some(ca_file);
            mock._dir = Some(dir);
        }
        mock
    }

    /// `http://127.0.0.1:PORT/v1` (or https), for an upstream's `base_url`.
    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}/v1", self.scheme, self.addr.port())
    }

    /// Changes how the mock answers from now on.
    pub fn set_behavior(&self, behavior: Behavior) {
        *self.shared.behavior.lock().expect("lock") = behavior;
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// The requests received after the first `start` ones (cheap to poll under load).
    pub fn received_from(&self, start: usize) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .expect("lock")
            .get(start..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Stops recording requests (and drops those recorded). For a mock that serves millions of
    /// requests and is never asked what it received: the `mock-upstream` process of the
    /// benchmarks, whose record otherwise grew by the whole request (headers and body) every time,
    /// to tens of GB in a long run.
    pub fn forget_requests(&self) {
        self.shared.record.store(false, Ordering::Relaxed);
        self.drain_received();
    }

    /// Takes the requests received so far, so that a long run's record stays small.
    pub fn drain_received(&self) -> Vec<Received> {
        std::mem::take(&mut *self.shared.received.lock().expect("lock"))
    }

    /// Stops listening and closes every open connection (streams in flight break), as a crashed
    /// upstream would. Cleartext mocks only.
    pub fn kill(&self) {
        self.task.abort();
        self.shared.killed.send_replace(true);
    }

    /// Listens again on the same address after [`kill`](Self::kill).
    pub fn restart(&mut self) -> std::io::Result<()> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let listener = socket.listen(1024)?;
        self.shared.killed.send_replace(false);
        self.task = tokio::spawn(accept(listener, self.shared.clone(), None));
        Ok(())
    }

    /// From now on, requests are recorded and then wait (no headers) until [`release`](Self::release).
    pub fn hold(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Answers the held requests, and later ones at once.
    pub fn release(&self) {
        self.shared.gate.send_replace(true);
    }

    /// How many requests it received.
    pub fn hits(&self) -> usize {
        self.shared.received.lock().expect("lock").len()
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let mut killed = shared.killed.subscribe();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let serve = async {
                let _ = match tls {
                    None => builder.serve_connection(TokioIo::new(stream), service).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                        Err(_) => return,
                    },
                };
            };
            // Dropping the connection future closes the socket.
            tokio::select! {
                () = serve => {}
                _ = killed.wait_for(|k| *k) => {}
            }
        });
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let received = Received {
        method: parts.method,
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    };
    let request = received.json();
    let path = received.path.clone();
    if shared.record.load(Ordering::Relaxed) {
        shared.received.lock().expect("lock").push(received);
    }
    let _ = shared.gate.subscribe().wait_for(|open| *open).await;
    let behavior = shared.behavior.lock().expect("lock").clone();
    let name = shared.name.clone();
    match behavior {
        Behavior::Status(code) => return Ok(error(code, &format!("{name} says {code}"))),
        Behavior::StatusSaying(code, message) => return Ok(error(code, &message)),
        Behavior::OkWithErrorBody => return Ok(error(200, &format!("{name} failed with a 200"))),
        Behavior::Stall => std::future::pending::<()>().await,
        _ => {}
    }
    if let (Behavior::Replies(body), "/v1/chat/completions") = (&behavior, path.as_str()) {
        return Ok(json_response(body.clone()));
    }
    let response = match path.as_str() {
        "/v1/chat/completions" if request["stream"] == true => {
            chat_stream(&name, &request, behavior)
        }
        "/v1/chat/completions" => json_response(chat_completion(&name, &request, &behavior)),
        "/v1/completions" => json_response(json!({
            "id": "cmpl-mock", "object": "text_completion", "model": request["model"],
            "choices": [{"index": 0, "text": format!("{name} completes"), "finish_reason": "stop"}],
        })),
        "/v1/embeddings" => json_response(json!({
            "object": "list", "model": request["model"],
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
        })),
        "/v1/images/generations" => json_response(json!({
            "created": 0, "data": [{"url": format!("https://images.example/{name}.png")}],
        })),
        "/v1/models" => json_response(json!({
            "object": "list", "data": [{"id": format!("{name}-model"), "object": "model"}],
        })),
        _ => error(404, &format!("{name} says 404")),
    };
    Ok(response)
}

/// The reply text for a chat request: who answered and the last user message.
pub fn reply_text(name: &str, request: &Value) -> String {
    let last = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    format!("{name} heard: {last}")
}

fn answer(name: &str, request: &Value, behavior: &Behavior) -> String {
    match behavior {
        Behavior::Says(text) | Behavior::SaysCutOff(text) => text.clone(),
        Behavior::SaysInPieces(pieces) => pieces.concat(),
        _ => reply_text(name, request),
    }
}

fn finish_reason(behavior: &Behavior) -> &'static str {
    if matches!(behavior, Behavior::SaysCutOff(_)) { "length" } else { "stop" }
}

fn chat_completion(name: &str, request: &Value, behavior: &Behavior) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": request["model"],
        "choices": [{"index": 0, "finish_reason": finish_reason(behavior),
                     "message": {"role": "assistant", "content": answer(name, request, behavior)}}],
        "usage": usage(request, answer(name, request, behavior).split_inclusive(' ').count()),
    })
}

/// The usage the mock reports: one prompt token per whitespace-separated word of the messages'
/// text, one completion token per piece of the answer (a stream sends one piece per event).
pub fn usage(request: &Value, completion_tokens: usize) -> Value {
    let prompt_tokens: usize = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(|text| text.split_whitespace().count())
        .sum();
    json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
           "total_tokens": prompt_tokens + completion_tokens})
}

fn chat_stream(name: &str, request: &Value, behavior: Behavior) -> Response<Body> {
    let behavior = match behavior {
        Behavior::SlowIfAsked(delay) if reply_text(name, request).contains("slowly") => {
            Behavior::SlowEvents(delay)
        }
        other => other,
    };
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
            "model": request["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    if let Behavior::Chunks(chunks) = &behavior {
        events = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        events.push("data: [DONE]\n\n".to_string());
    } else if behavior != Behavior::StallBeforeFirstContent {
        let text = answer(name, request, &behavior);
        let pieces: Vec<&str> = match &behavior {
            Behavior::SaysInPieces(pieces) => pieces.iter().map(String::as_str).collect(),
            _ => text.split_inclusive(' ').collect(),
        };
        let completion_tokens = pieces.len();
        for piece in pieces {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
        if behavior == Behavior::ErrorEventMidStream {
            events.truncate(2);
            events
                .push("data: {\"error\":{\"message\":\"mock overloaded mid-stream\"}}\n\n".into());
        }
        events.push(chunk(json!({}), json!(finish_reason(&behavior))));
        let asked = request["stream_options"]["include_usage"] == true;
        if asked && behavior != Behavior::IgnoresUsageOption {
            let last = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
                "created": 0, "model": request["model"], "choices": [],
                "usage": usage(request, completion_tokens)});
            events.push(format!("data: {last}\n\n"));
        }
        if behavior != Behavior::EndWithoutDone {
            events.push("data: [DONE]\n\n".to_string());
        }
    }
    let frames =
        futures_util::stream::unfold((events.into_iter(), 0usize), move |(mut it, sent)| {
            let behavior = behavior.clone();
            async move {
                if sent == usize::MAX {
                    return None;
                }
                match behavior {
                    Behavior::FailAfterEvents(n) if sent >= n => {
                        // Let hyper flush what was sent: it drops unflushed data when a body fails.
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        return Some((
                            Err(std::io::Error::other("mock breaks the stream")),
                            (it, usize::MAX),
                        ));
                    }
                    Behavior::SlowEvents(delay) => tokio::time::sleep(delay).await,
                    _ => {}
                }
                match it.next() {
                    Some(event) => Some((Ok(Frame::data(Bytes::from(event))), (it, sent + 1))),
                    None if behavior == Behavior::StallBeforeFirstContent => {
                        std::future::pending::<()>().await;
                        None
                    }
                    None => None,
                }
            }
        });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("response")
}

fn json_response(value: Value) -> Response<Body> {
    Response::builder()
        .header("content-type", "application/json")
        .header("x-mock-header", "kept")
        .body(Full::new(Bytes::from(value.to_string())).map_err(|n| match n {}).boxed_unsync())
        .expect("response")
}

/// An OpenAI error answer, with the headers a provider adds that must not reach clients.
fn error(code: u16, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": "mock_error", "code": code}});
    let mut response = json_response(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("set-cookie", http::HeaderValue::from_static("__provider=secret; HttpOnly"));
    headers.insert("openai-organization", http::HeaderValue::from_static("acme-internal"));
    response
}
