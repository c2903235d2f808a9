//! Traces: OpenTelemetry spans that follow the GenAI semantic conventions, one server span per
//! request, a client span per upstream attempt and a span per plugin call, built from the
//! request's [`Trail`] once its response has ended (so a stream's span ends with its last event)
//! and exported over OTLP (HTTP or gRPC) off the request path. No span carries prompt or answer text.
//!
//! The span type, the W3C trace context, OTLP's encoding and the exporter are the
//! `switchyard-otel` crate's, shared with the inference service: [`span`], [`otlp`], [`export`].

use std::time::{Duration, SystemTime};

use serde::Deserialize;

pub use switchyard_otel::{Span, TraceContext, export, otlp, span, span_id};

use crate::record::{Counted, Meta, Outcome};
use crate::trail::Notes;
use span::{Event, Kind, StatusCode, Value, nanos, unix_nanos};

/// `[telemetry]`.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetryConfig {
    /// The collector: OTLP/HTTP (protobuf), e.g. `http://127.0.0.1:4318` (`/v1/traces` is
    /// added); OTLP/gRPC for `grpc://host:4317` (clear text) or any URL on port 4317.
    pub otlp_endpoint: String,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Share of new traces recorded, 0–1; a client's `traceparent` decides for its own trace.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

fn default_service_name() -> String {
    "switchyard".into()
}

fn default_sample_ratio() -> f64 {
    1.0
}

/// Tracing, when configured.
#[derive(Debug)]
pub struct Telemetry {
    pub exporter: export::Exporter,
    pub sample_ratio: f64,
}

impl Telemetry {
    pub fn start(config: &TelemetryConfig) -> Result<Self, String> {
        let connector = crate::upstream::connector(None, Duration::from_secs(2))?;
        let exporter =
            export::Exporter::start(&config.otlp_endpoint, config.service_name.clone(), connector)?;
        Ok(Self { exporter, sample_ratio: config.sample_ratio })
    }
}

/// The GenAI operation of an endpoint (`gen_ai.operation.name`).
fn operation(endpoint: &str) -> &'static str {
    match endpoint {
        "/v1/chat/completions" => "chat",
        "/v1/completions" => "text_completion",
        "/v1/embeddings" => "embeddings",
        "/v1/images/generations" => "image_generation",
        _ => "other",
    }
}

/// What the spans of one request are built from.
pub struct Finished<'a> {
    pub meta: &'a Meta,
    pub outcome: &'a Outcome,
    pub notes: &'a Notes,
    pub counted: Counted,
    /// When the response ended, and how long the request took.
    pub ended: SystemTime,
    pub elapsed: Duration,
    /// `complete`, `failed`, `client_gone`.
    pub end: &'static str,
    /// The host (and port) of an upstream, by name.
    pub address: &'a dyn Fn(&str) -> Option<String>,
}

/// The request's spans: the server span, one client span per attempt, one span per plugin call
/// (a stream's calls add up into one span per plugin). Empty when the trace is not sampled.
pub fn spans(f: &Finished<'_>) -> Vec<Span> {
    let Some(trace) = f.notes.trace.as_ref().filter(|t| t.sampled) else { return Vec::new() };
    let start = f.ended.checked_sub(f.elapsed).unwrap_or(f.ended);
    let at = |offset: Duration| unix_nanos(start + offset);
    let op = operation(f.meta.endpoint);
    let name = match &f.meta.model {
        Some(model) => format!("{op} {model}"),
        None => op.to_string(),
    };
    let new = |span_id, parent, name: String, kind, from: u64, to: u64| {
        Span::new(trace, span_id, parent, name, kind, from, to)
    };
    let mut server = new(
        trace.span_id,
        trace.parent_span_id,
        name.clone(),
        Kind::Server,
        at(Duration::ZERO),
        unix_nanos(f.ended),
    );
    server_attributes(&mut server, f, op);
    let mut spans = Vec::with_capacity(1 + f.notes.attempts.len() + f.notes.plugin_calls.len());
    for attempt in &f.notes.attempts {
        let mut client = new(
            attempt.span_id,
            Some(trace.span_id),
            name.clone(),
            Kind::Client,
            at(attempt.started),
            at(attempt.started + attempt.duration),
        );
        client.set("gen_ai.operation.name", Some(op));
        client.set("gen_ai.request.model", f.meta.model.clone());
        client.set("switchyard.upstream", Some(attempt.upstream.as_str()));
        client.set("switchyard.attempt.outcome", Some(attempt.outcome));
        client.set("server.address", (f.address)(&attempt.upstream));
        if attempt.outcome != "ok" {
            client.status = Some((StatusCode::Error, attempt.outcome.to_string()));
        }
        spans.push(client);
    }
    for call in &f.notes.plugin_calls {
        let name = format!("plugin {} {}", call.plugin, call.phase);
        let from = at(call.started);
        let mut span = new(
            span_id(),
            Some(trace.span_id),
            name,
            Kind::Internal,
            from,
            from + nanos(call.duration),
        );
        span.set("switchyard.plugin.name", Some(&*call.plugin));
        span.set("switchyard.plugin.sha256", Some(call.sha256.as_str()));
        span.set("switchyard.plugin.phase", Some(call.phase));
        span.set("switchyard.plugin.decision", Some(call.decision));
        span.set("switchyard.plugin.calls", Some(u64::from(call.calls)));
        span.set("switchyard.plugin.failure", call.failure);
        if let Some(failure) = call.failure {
            span.status = Some((StatusCode::Error, failure.to_string()));
        }
        spans.push(span);
    }
    spans.insert(0, server);
    spans
}

/// The server span's GenAI, HTTP and Switchyard attributes, its events, and its status.
fn server_attributes(span: &mut Span, f: &Finished<'_>, op: &'static str) {
    let usage = f.counted.usage;
    span.set("gen_ai.operation.name", Some(op));
    span.set("gen_ai.request.model", f.meta.model.clone());
    span.set("gen_ai.response.model", f.notes.response_model.clone());
    span.set("gen_ai.usage.input_tokens", Some(usage.prompt_tokens));
    span.set("gen_ai.usage.output_tokens", Some(usage.completion_tokens));
    span.set("http.request.method", Some("POST"));
    span.set("url.path", Some(f.meta.endpoint));
    span.set("http.response.status_code", Some(u64::from(f.outcome.status)));
    span.set("switchyard.request_id", Some(f.meta.request_id.as_str()));
    span.set("switchyard.tenant", f.meta.tenant.as_deref());
    span.set("switchyard.cache", Some(f.outcome.cache.as_str()));
    span.set("switchyard.upstream", Some(f.outcome.upstream.as_str()));
    span.set("switchyard.stream", Some(f.meta.stream));
    span.set("switchyard.usage.source", Some(f.counted.source));
    span.set("switchyard.end", Some(f.end));
    if let Some(first) = f.notes.first_token {
        span.set("switchyard.time_to_first_token_ms", Some(first.as_secs_f64() * 1e3));
    }
    let start = span.start_unix_nanos;
    for mark in &f.notes.marks {
        let attributes = mark
            .detail
            .iter()
            .map(|(k, v)| (format!("switchyard.{k}").into(), Value::from(v.clone())))
            .collect();
        span.events.push(Event {
            name: mark.name.to_string(),
            unix_nanos: start + nanos(mark.at),
            attributes,
        });
    }
    if f.outcome.status >= 500 || f.end == "failed" {
        span.status = Some((StatusCode::Error, format!("status {} ({})", f.outcome.status, f.end)));
    } else {
        span.status = Some((StatusCode::Ok, String::new()));
    }
}
