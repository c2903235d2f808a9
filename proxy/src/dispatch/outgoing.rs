//! The upstream side of one attempt: the request sent (with the proxy's own headers), a failed
//! answer's body kept for passing through, and which response headers may reach the client.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Full, Limited};
use tokio::time::{Instant, timeout, timeout_at};

use super::Failure;
use crate::request::Endpoint;
use crate::upstream::Upstream;

/// How much of a failed upstream's error body is kept, to pass through if it is the last answer.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The request for one attempt.
pub(super) fn build_request(
    upstream: &Upstream,
    endpoint: Endpoint,
    body: Bytes,
    request_id: &str,
) -> Result<Request<Full<Bytes>>, Failure> {
    let uri =
        upstream.uri(endpoint).map_err(|e| Failure::Connect(format!("bad upstream URL: {e}")))?;
    let id = HeaderValue::try_from(request_id)
        .map_err(|e| Failure::Connect(format!("building request: {e}")))?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = endpoint.method();
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    if endpoint.method() == http::Method::POST {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers.insert(HeaderName::from_static("x-request-id"), id);
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    Ok(request)
}

/// Reads a failed upstream's body (bounded) so it can be passed through if it is the last answer.
pub(super) async fn read_error_body(
    response: Response<hyper::body::Incoming>,
    deadline: Instant,
) -> Response<Bytes> {
    let (mut parts, incoming) = response.into_parts();
    relayable_headers(&mut parts.headers);
    parts.headers.remove(header::CONTENT_LENGTH);
    let limited = Limited::new(incoming, MAX_ERROR_BODY);
    let bytes = match timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, bytes)
}

/// Response headers of an upstream that may reach the client. An allowlist, not a blocklist: a
/// provider's cookies, organisation and project names, its own request ids and rate-limit state
/// (of the proxy's key, not the client's) stay behind, and so does every hop-by-hop header,
/// including those a `Connection` header names.
const RELAYED_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::DATE,
];

/// Keeps only [`RELAYED_HEADERS`], less any that the `Connection` header names (RFC 9110 §7.6.1).
pub(super) fn relayable_headers(headers: &mut HeaderMap) {
    let named_per_hop = |name: &HeaderName| {
        let listed = headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok());
        listed.flat_map(|v| v.split(',')).any(|hop| hop.trim().eq_ignore_ascii_case(name.as_str()))
    };
    let mut kept = HeaderMap::with_capacity(RELAYED_HEADERS.len());
    for name in &RELAYED_HEADERS {
        if headers.contains_key(name) && !named_per_hop(name) {
            for value in headers.get_all(name) {
                kept.append(name.clone(), value.clone());
            }
        }
    }
    *headers = kept;
}

/// Fetches a GET endpoint from one upstream with its first-byte timeout; used by `/v1/models`.
pub async fn fetch_json(
    upstream: &Upstream,
    endpoint: Endpoint,
) -> Result<serde_json::Value, String> {
    let request =
        build_request(upstream, endpoint, Bytes::new(), "models").map_err(|f| f.describe())?;
    let limit = upstream.timeouts.first_byte.max(Duration::from_millis(1));
    let response = timeout(limit, upstream.send(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let body = timeout(limit, Limited::new(response.into_body(), 4 * 1024 * 1024).collect())
        .await
        .map_err(|_| "timed out reading the body".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_reach_the_client() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("set-cookie", "__cf_bm=abc"),
            ("openai-organization", "acme-internal"),
            ("x-ratelimit-remaining-tokens", "12"),
            ("retry-after", "3"),
            ("connection", "keep-alive, Cache-Control"),
            ("cache-control", "private"),
            ("keep-alive", "timeout=5"),
        ] {
            headers.append(name, value.parse().unwrap());
        }
        relayable_headers(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "retry-after"]);
    }
}
