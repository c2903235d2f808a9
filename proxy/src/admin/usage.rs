//! `GET /admin/usage`, behind the admin bearer token: per tenant the current windows' counters
//! (shared by every replica with the Redis store), what is left of each limit, and this process's
//! totals since it started.

use http::{Method, Response, StatusCode};
use serde_json::json;

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::state::State;

/// The path this module answers.
pub const PATH: &str = "/admin/usage";

/// Answers an authorized request for [`PATH`].
pub async fn handle(state: &State, method: &Method) -> Result<Response<Body>, ProxyError> {
    if method != Method::GET {
        return Err(ProxyError::MethodNotAllowed { method: method.to_string(), path: PATH.into() });
    }
    let tenants = state.ledger.report().await;
    Ok(body::json(StatusCode::OK, &json!({ "tenants": tenants })))
}
