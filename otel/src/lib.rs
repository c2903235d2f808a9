//! `switchyard-otel`: the OpenTelemetry tracing that the proxy and the inference service share:
//! finished spans, the W3C trace context they continue, OTLP's protobuf encoding, and the exporter
//! that sends batches off the request path. Each binary builds its own spans (which attributes,
//! which children) from what it knows; this crate only carries and sends them.
//!
//! - [`span`]: the span type, the W3C trace context (`traceparent`, `tracestate`), ids, clocks.
//! - [`otlp`]: OTLP's protobuf encoding (`ExportTraceServiceRequest`).
//! - [`export`]: the batching exporter thread, over OTLP/HTTP or OTLP/gRPC.
//! - `receiver` (feature `receiver`, for tests): an OTLP/HTTP receiver and span look-ups.

pub mod export;
pub mod otlp;
#[cfg(feature = "receiver")]
pub mod receiver;
pub mod span;

pub use export::{ExportCounters, Exporter};
pub use span::{
    Event, Key, Kind, Span, StatusCode, TraceContext, Value, nanos, span_id, unix_nanos,
};

/// An error with its sources, `: `-joined: for connection errors the useful detail (refused, a
/// TLS alert, an unknown issuer) is in the sources, not in the top error's words. (The proxy's
/// `error::chain` is this one.)
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
