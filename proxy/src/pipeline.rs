//! The request's way through the proxy, in one straight line:
//! accept → authenticate → parse → route → dispatch (with fallback) → respond.
//!
//! Each step is a function in its own module; this file only orders them and stamps every
//! response with `x-request-id` and `x-switchyard-upstream`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::body::Body;
use crate::dispatch::{self, Answer};
use crate::error::ProxyError;
use crate::metrics::RequestLabels;
use crate::models;
use crate::request::{Endpoint, ParsedRequest};
use crate::state::State;

/// Handles one client request; never fails, errors become OpenAI-shaped responses.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let request_id = request_id(&request);
    let endpoint = Endpoint::from_path(request.uri().path());
    let (mut response, upstream) = match serve(&state, request, &request_id).await {
        Ok(Answer { response, upstream }) => (response, upstream),
        Err(error) => {
            if error.blame() != crate::error::Blame::Client {
                tracing::warn!(%request_id, "request failed: {error}");
            }
            (error.into_response(), "none".to_string())
        }
    };
    let labels = RequestLabels {
        endpoint: endpoint.map_or("unknown", Endpoint::label),
        status: response.status().as_u16(),
        upstream: upstream.clone(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::try_from(request_id) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::try_from(upstream) {
        headers.insert("x-switchyard-upstream", value);
    }
    response
}

async fn serve(
    state: &State,
    request: Request<Incoming>,
    request_id: &str,
) -> Result<Answer, ProxyError> {
    let path = request.uri().path().to_string();
    let endpoint = Endpoint::from_path(&path).ok_or_else(|| ProxyError::NotFound(path.clone()))?;
    if request.method() != endpoint.method() {
        return Err(ProxyError::MethodNotAllowed { method: request.method().to_string(), path });
    }
    let _tenant = state.tenants.authenticate(request.headers())?;
    if endpoint == Endpoint::Models {
        return Ok(models::list(&state.upstreams).await);
    }
    let raw = read_body(state, request).await?;
    let parsed = ParsedRequest::parse(endpoint, raw)?;
    let chain = match endpoint {
        Endpoint::ImagesGenerations => &state.image_chain,
        _ => &state.text_chain,
    };
    dispatch::dispatch(chain, &parsed, request_id, &state.metrics).await
}

/// Reads the whole body within the size and time limits.
async fn read_body(state: &State, request: Request<Incoming>) -> Result<Bytes, ProxyError> {
    let limit = state.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let limited = Limited::new(request.into_body(), usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(state.body_read_timeout, limited.collect()).await {
        Err(_) => Err(ProxyError::BodyTimeout(state.body_read_timeout.as_millis() as u64)),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::PayloadTooLarge { limit })
        }
        Ok(Err(e)) => Err(ProxyError::BodyRead(e.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The client's `x-request-id` when it is sane, else a fresh random one.
fn request_id(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", fastrand::u128(..)))
}
