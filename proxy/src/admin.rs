//! The admin listener: `GET /healthz` and `GET /metrics`, open like Envoy's admin port so probes
//! and scrapers need no secret; management endpoints under `/admin/` require the bearer token.
//!
//! - [`plugins`]: `GET /admin/plugins`, `POST /admin/reload`, `PUT /admin/plugins/{name}`.
//! - [`usage`]: `GET /admin/usage`, every tenant's windows, remaining limits and totals.

pub mod plugins;
pub mod usage;

use std::sync::Arc;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::state::State;

/// Handles one admin request.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    match (request.method().as_str(), path) {
        ("GET", "/healthz") => body::json(StatusCode::OK, &json!({"status": "ok"})),
        ("GET", "/metrics") => {
            let mut response = Response::new(body::full(state.metrics.encode()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        (_, p) if p.starts_with("/admin/") => match authorize(&state, &request) {
            Err(e) => e.into_response(),
            Ok(()) if request.uri().path() == usage::PATH => {
                usage::handle(&state, request.method())
                    .await
                    .unwrap_or_else(ProxyError::into_response)
            }
            Ok(()) => {
                plugins::handle(&state, request).await.unwrap_or_else(ProxyError::into_response)
            }
        },
        (_, p) => ProxyError::NotFound(p.to_string()).into_response(),
    }
}

/// Checks `Authorization: Bearer <token>` against `admin.token_env`. Without a configured token
/// (unset or blank: see [`crate::env::EnvSource::secret`]) the management endpoints stay closed.
fn authorize(state: &State, request: &Request<Incoming>) -> Result<(), ProxyError> {
    let Some(expected) = &state.admin_token else {
        return Err(ProxyError::Unauthorized(
            "the admin API is disabled: set admin.token_env and that environment variable".into(),
        ));
    };
    match crate::auth::bearer_token(request.headers()) {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ProxyError::Unauthorized("missing or wrong admin bearer token".into())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
