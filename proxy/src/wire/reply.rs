//! A plugin's own answer (an error, a completion, a raw body) as the HTTP response a client gets.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{self, Body};
use crate::plugin::Reply;

/// A plugin's answer as an HTTP response: errors in OpenAI's shape, completions as a chat
/// completion (SSE when the client streams), raw bodies as given.
pub fn reply_response(reply: Reply, stream: bool, model: Option<&str>) -> Response<Body> {
    match reply {
        Reply::Error(error) => {
            let status =
                StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            body::json(status, &super::error_body(&error.message, &error.kind, None, None))
        }
        Reply::Completion(text) => {
            let mut response =
                Response::new(body::full(super::chunks::plugin_completion(&text, model, stream)));
            let kind = if stream { "text/event-stream" } else { "application/json" };
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            response
        }
        Reply::Raw(raw) => {
            let mut response = Response::new(body::full(Bytes::from(raw.body)));
            *response.status_mut() = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
            if let Ok(value) = HeaderValue::try_from(raw.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
    }
}
