//! For tests (feature `receiver`): a real OTLP/HTTP receiver on 127.0.0.1:0 that decodes every
//! export with the `opentelemetry-proto` crate — not this crate's own encoder, so a test proves
//! that a collector can read what was sent — and hands on each span with its service name; and
//! the attribute look-ups that tests assert with.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Serves OTLP/HTTP on 127.0.0.1:0: the endpoint (`http://127.0.0.1:PORT`) and every span received,
/// with its resource's `service.name`. A request that is not `POST /v1/traces` with a protobuf
/// export is answered 400 and yields nothing, so a test waiting for spans fails on it.
pub async fn http() -> std::io::Result<(String, mpsc::UnboundedReceiver<(String, Span)>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                async move {
                    let status = receive(req, &tx).await;
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok((url, rx))
}

async fn receive(req: Request<Incoming>, tx: &mpsc::UnboundedSender<(String, Span)>) -> StatusCode {
    let protobuf = req.headers().get(http::header::CONTENT_TYPE).map(|v| v.as_bytes())
        == Some(b"application/x-protobuf".as_slice());
    if req.method() != http::Method::POST || req.uri().path() != "/v1/traces" || !protobuf {
        return StatusCode::BAD_REQUEST;
    }
    let Ok(body) = req.into_body().collect().await else { return StatusCode::BAD_REQUEST };
    let Ok(export) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return StatusCode::BAD_REQUEST;
    };
    for resource in export.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                let _ = tx.send((service.clone(), span));
            }
        }
    }
    StatusCode::OK
}

/// A string value's text.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// Every string a span carries (its name, string attributes and array items, events' names and
/// string attributes, the status message), one per line: what a test searches for leaked text.
/// Not the span's `Debug` form, whose numbers (timestamps, ids) can hold any digit run.
pub fn texts(span: &Span) -> String {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::StringValue(s) => out.push(s.clone()),
            Value::ArrayValue(a) => {
                a.values.iter().filter_map(|v| v.value.as_ref()).for_each(|v| strings(v, out));
            }
            _ => {}
        }
    }
    let mut out = vec![span.name.clone(), span.trace_state.clone()];
    let attributes = span.attributes.iter().chain(span.events.iter().flat_map(|e| &e.attributes));
    for value in attributes.filter_map(|kv| kv.value.as_ref()?.value.as_ref()) {
        strings(value, &mut out);
    }
    out.extend(span.events.iter().map(|e| e.name.clone()));
    out.extend(span.status.iter().map(|s| s.message.clone()));
    out.join("\n")
}

/// The value of attribute `key`.
pub fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
}

/// A string attribute, or "" when it is missing or not a string.
pub fn string(span: &Span, key: &str) -> String {
    attribute(span, key).and_then(|v| text(&v)).unwrap_or_default()
}

/// An integer attribute; panics (failing the test) when it is missing or not an integer.
pub fn int(span: &Span, key: &str) -> i64 {
    match attribute(span, key) {
        Some(Value::IntValue(n)) => n,
        other => panic!("{key} is {other:?}"),
    }
}
