//! The HTTP surface: routing, body limits, and the handlers that turn requests into engine jobs
//! and engine events into OpenAI responses.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::{self, GenRequest};
use crate::engine::{Engine, Event, Job, Status};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::openai::{self, Endpoint, Meta};
use crate::trace::{RequestTrace, Tracer};

/// Every response body.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted (a 1K-token prompt is a few KB).
const MAX_BODY: usize = 4 << 20;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// What every handler needs.
pub struct App {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub model_id: String,
    /// Reported as the model's `created` in /v1/models.
    pub started: u64,
    /// `--n-predict`: the `max_tokens` of requests that set none.
    pub default_max_tokens: Option<u32>,
    /// Traces, when `--otlp-endpoint` is set.
    pub tracer: Option<Arc<Tracer>>,
}

/// The hyper service function: never fails, errors become OpenAI-shaped responses.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(route(app, req).await.unwrap_or_else(ApiError::into_response))
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => Ok(health(&app)),
        (&Method::GET, "/metrics") => Ok(metrics(&app)),
        (&Method::GET, "/v1/models") => {
            Ok(json_response(StatusCode::OK, &openai::models(&app.model_id, app.started)))
        }
        (&Method::POST, "/v1/chat/completions") => generate(app, req, Endpoint::Chat).await,
        (&Method::POST, "/v1/completions") => generate(app, req, Endpoint::Completion).await,
        (
            _,
            "/healthz" | "/metrics" | "/v1/models" | "/v1/chat/completions" | "/v1/completions",
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found(&path)),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// 200 `{"status":"ready"}` once the model is loaded; 503 with "loading" (or "failed") before.
fn health(app: &App) -> Response<Body> {
    let status = app.engine.status().borrow().clone();
    match status {
        Status::Ready => json_response(StatusCode::OK, &json!({"status": "ready"})),
        Status::Loading => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "loading"}))
        }
        Status::Failed(e) => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "failed", "error": e}))
        }
        Status::Stopped => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "stopped"}))
        }
    }
}

fn metrics(app: &App) -> Response<Body> {
    let mut resp = Response::new(full(app.metrics.encode()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let collected = Limited::new(req.into_body(), MAX_BODY).collect().await.map_err(|e| {
        let mut err =
            ApiError::invalid("invalid_body", format!("Reading the request body failed: {e}"));
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            err.status = StatusCode::PAYLOAD_TOO_LARGE;
            err.message = format!("Request body is over {MAX_BODY} bytes");
        }
        err
    })?;
    Ok(collected.to_bytes())
}

/// Both generation endpoints: parse, tokenize off the runtime, queue, answer plain or streamed.
/// The request's trace ends with its response: here for an error, in [`collect`] or the SSE
/// body otherwise.
async fn generate(
    app: Arc<App>,
    req: Request<Incoming>,
    endpoint: Endpoint,
) -> Result<Response<Body>, ApiError> {
    let mut trace =
        RequestTrace::begin(app.tracer.as_ref(), req.headers(), endpoint, &app.model_id);
    let (rx, meta, stream) = match submit(&app, req, endpoint, &mut trace).await {
        Ok(submitted) => submitted,
        Err(e) => {
            trace.failed(e.status, e.code);
            return Err(e);
        }
    };
    trace.response_id(&meta.id);
    if stream { Ok(crate::sse::response(rx, meta, trace)) } else { collect(rx, &meta, trace).await }
}

/// Parses, tokenizes and queues a request: its engine events, its response's metadata, and
/// whether it streams.
async fn submit(
    app: &Arc<App>,
    req: Request<Incoming>,
    endpoint: Endpoint,
    trace: &mut RequestTrace,
) -> Result<(mpsc::UnboundedReceiver<Event>, Meta, bool), ApiError> {
    let enqueued = Instant::now();
    let body = read_body(req).await?;
    let request: GenRequest = match endpoint {
        Endpoint::Chat => api::parse_chat(&body)?,
        Endpoint::Completion => api::parse_completion(&body)?,
    };
    let max_tokens = request.max_tokens.or(app.default_max_tokens);
    trace.request(&request, max_tokens);
    app.engine.loaded()?;
    let prompt = request.prompt.clone();
    let tokenizer = app.clone();
    let tokens = tokio::task::spawn_blocking(move || tokenizer.engine.tokenize(&prompt))
        .await
        .map_err(|e| ApiError::internal(format!("tokenizer task failed: {e}")))??;
    let (events, rx) = mpsc::unbounded_channel();
    app.engine.submit(Job {
        prompt: tokens,
        sampling: request.sampling,
        max_tokens,
        stop: request.stop,
        events,
        enqueued,
        submitted: Instant::now(),
    })?;
    let meta = Meta::new(endpoint, app.model_id.clone(), request.include_usage);
    Ok((rx, meta, request.stream))
}

/// Waits for the whole answer. If the client leaves, this future is dropped with `rx`, and the
/// engine frees the slot.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Event>,
    meta: &Meta,
    mut trace: RequestTrace,
) -> Result<Response<Body>, ApiError> {
    let mut text = String::new();
    loop {
        let failed = match rx.recv().await {
            Some(Event::Text(t)) => {
                text.push_str(&t);
                continue;
            }
            Some(Event::Done(reason, usage, timings)) => {
                trace.complete(reason, usage, timings);
                return Ok(json_response(StatusCode::OK, &meta.response(&text, reason, usage)));
            }
            Some(Event::Failed(message)) => ApiError::internal(message),
            None => ApiError::unavailable("the engine stopped"),
        };
        trace.failed(failed.status, failed.code);
        return Err(failed);
    }
}
