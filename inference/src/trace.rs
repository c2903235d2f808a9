//! Traces: each generation request continues the caller's W3C trace context (`traceparent`,
//! `tracestate`; the proxy sends them) and, when sampled, becomes a server span with three
//! children — queue wait, prompt processing (prefill) and generation (decode) — exported over OTLP
//! by `switchyard-otel`'s exporter, off the request path. The spans are built when the response
//! ends (a stream's after its last event, not at its headers), or when the client leaves. They
//! carry counts, times, model names and ids, never prompt or answer text, nor error messages
//! (which can quote the request).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::HeaderMap;
use switchyard_otel::{Exporter, Kind, Span, StatusCode, TraceContext, Value, nanos, span_id};

use crate::api::GenRequest;
use crate::config::TelemetryFlags;
use crate::engine::{FinishReason, Timings, Usage};
use crate::openai::Endpoint;

/// The exporter and the sampling ratio, when `--otlp-endpoint` is set.
#[derive(Debug)]
pub struct Tracer {
    exporter: Exporter,
    sample_ratio: f64,
}

impl Tracer {
    /// Starts the exporter thread; `None` when tracing is off.
    pub fn start(flags: &TelemetryFlags) -> Result<Option<Arc<Self>>, crate::Error> {
        let Some(endpoint) = &flags.otlp_endpoint else { return Ok(None) };
        let exporter = Exporter::start_plain(endpoint, flags.service_name.clone())
            .map_err(crate::Error::Config)?;
        Ok(Some(Arc::new(Self { exporter, sample_ratio: flags.sample_ratio })))
    }

    /// Spans dropped (queue full), exported, and failed exports so far.
    pub fn counters(&self) -> &switchyard_otel::ExportCounters {
        &self.exporter.counters
    }
}

/// One request's trace in the making: a no-op when tracing is off or the trace is not sampled.
/// Dropping it builds and queues the spans, so every way a request ends is recorded.
#[derive(Debug, Default)]
pub struct RequestTrace(Option<Box<Recording>>);

#[derive(Debug)]
struct Recording {
    tracer: Arc<Tracer>,
    context: TraceContext,
    /// The request's arrival, on both clocks: span times are Unix nanoseconds.
    started: Instant,
    started_unix: SystemTime,
    endpoint: Endpoint,
    response_model: String,
    request_model: Option<String>,
    stream: bool,
    max_tokens: Option<u32>,
    response_id: Option<String>,
    /// Set when the response ends; unset on drop means the client left first.
    end: Option<End>,
}

/// How a request ended.
#[derive(Debug)]
enum End {
    Complete {
        reason: FinishReason,
        usage: Usage,
        timings: Timings,
    },
    /// An OpenAI error answer, by status and code.
    Refused {
        status: u16,
        code: &'static str,
    },
    /// A stream that ended with an error event after its 200.
    Broken {
        code: &'static str,
    },
}

impl RequestTrace {
    /// Starts the trace of a request to `endpoint` from its headers.
    pub fn begin(
        tracer: Option<&Arc<Tracer>>,
        headers: &HeaderMap,
        endpoint: Endpoint,
        model_id: &str,
    ) -> Self {
        let Some(tracer) = tracer else { return Self(None) };
        let context = TraceContext::from_headers(headers, tracer.sample_ratio);
        if !context.sampled {
            return Self(None);
        }
        Self(Some(Box::new(Recording {
            tracer: tracer.clone(),
            context,
            started: Instant::now(),
            started_unix: SystemTime::now(),
            endpoint,
            response_model: model_id.to_owned(),
            request_model: None,
            stream: false,
            max_tokens: None,
            response_id: None,
            end: None,
        })))
    }

    /// What the parsed request asked for (never its text); `max_tokens` as applied.
    pub fn request(&mut self, request: &GenRequest, max_tokens: Option<u32>) {
        if let Some(r) = &mut self.0 {
            r.request_model.clone_from(&request.model);
            r.stream = request.stream;
            r.max_tokens = max_tokens;
        }
    }

    /// The response's `id`.
    pub fn response_id(&mut self, id: &str) {
        if let Some(r) = &mut self.0 {
            r.response_id = Some(id.to_owned());
        }
    }

    /// The engine finished the answer.
    pub fn complete(&mut self, reason: FinishReason, usage: Usage, timings: Timings) {
        if let Some(r) = &mut self.0 {
            r.end = Some(End::Complete { reason, usage, timings });
        }
    }

    /// The request was answered with an error.
    pub fn failed(&mut self, status: http::StatusCode, code: &'static str) {
        if let Some(r) = &mut self.0 {
            r.end = Some(End::Refused { status: status.as_u16(), code });
        }
    }

    /// The stream, already answered 200, ended with an error event.
    pub fn broken(&mut self, code: &'static str) {
        if let Some(r) = &mut self.0 {
            r.end = Some(End::Broken { code });
        }
    }
}

impl Drop for RequestTrace {
    fn drop(&mut self) {
        if let Some(recording) = self.0.take() {
            let spans = recording.spans(SystemTime::now());
            recording.tracer.exporter.submit(spans);
        }
    }
}

impl Recording {
    /// Unix nanoseconds of an instant on the request's monotonic clock.
    fn at(&self, instant: Instant) -> u64 {
        switchyard_otel::unix_nanos(self.started_unix)
            + nanos(instant.saturating_duration_since(self.started))
    }

    /// The server span, then the stage spans when the engine finished the answer.
    fn spans(&self, ended: SystemTime) -> Vec<Span> {
        let operation = match self.endpoint {
            Endpoint::Chat => "chat",
            Endpoint::Completion => "text_completion",
        };
        let model = self.request_model.as_deref().unwrap_or(&self.response_model);
        let start = switchyard_otel::unix_nanos(self.started_unix);
        let end = switchyard_otel::unix_nanos(ended).max(start);
        let trace = &self.context;
        let (id, parent) = (trace.span_id, trace.parent_span_id);
        let name = format!("{operation} {model}");
        let mut server = Span::new(trace, id, parent, name, Kind::Server, start, end);
        self.server_attributes(&mut server, operation);
        let mut spans = vec![server];
        if let Some(End::Complete { reason, usage, timings }) = &self.end {
            spans.extend(self.stages(*reason, *usage, timings));
        }
        spans
    }

    fn server_attributes(&self, span: &mut Span, operation: &'static str) {
        span.set("gen_ai.operation.name", Some(operation));
        span.set("gen_ai.request.model", self.request_model.as_deref());
        span.set("gen_ai.response.model", Some(self.response_model.as_str()));
        span.set("gen_ai.response.id", self.response_id.as_deref());
        span.set("gen_ai.request.max_tokens", self.max_tokens.map(u64::from));
        span.set("http.request.method", Some("POST"));
        span.set("url.path", Some(self.endpoint.path()));
        span.set("switchyard.stream", Some(self.stream));
        self.end_attributes(span);
    }

    /// What the end of the request says: usage and first token, or the error; and the status.
    fn end_attributes(&self, span: &mut Span) {
        match &self.end {
            Some(End::Complete { reason, usage, timings }) => {
                span.set("http.response.status_code", Some(200u64));
                span.set("gen_ai.usage.input_tokens", Some(u64::from(usage.prompt_tokens)));
                span.set("gen_ai.usage.output_tokens", Some(u64::from(usage.completion_tokens)));
                let cached = u64::from(usage.cached_tokens);
                span.set("gen_ai.usage.cache_read.input_tokens", Some(cached));
                let reasons = Value::Strs(vec![reason.as_str().to_owned()]);
                span.attributes.push(("gen_ai.response.finish_reasons".into(), reasons));
                if let Some(first) = timings.first_token {
                    let ttft = first.saturating_duration_since(self.started).as_secs_f64() * 1e3;
                    span.set("switchyard.time_to_first_token_ms", Some(ttft));
                }
                span.set("switchyard.end", Some("complete"));
                span.status = Some((StatusCode::Ok, String::new()));
            }
            Some(End::Refused { status, code }) => {
                // The error answer was sent whole; only a 5xx is this service's failure.
                span.set("http.response.status_code", Some(u64::from(*status)));
                span.set("error.type", Some(*code));
                span.set("switchyard.end", Some("complete"));
                if *status >= 500 {
                    span.status = Some((StatusCode::Error, format!("status {status} ({code})")));
                }
            }
            Some(End::Broken { code }) => {
                span.set("http.response.status_code", Some(200u64));
                span.set("error.type", Some(*code));
                span.set("switchyard.end", Some("failed"));
                span.status = Some((StatusCode::Error, format!("stream broken ({code})")));
            }
            None => span.set("switchyard.end", Some("client_gone")),
        }
    }

    /// Queue wait, prompt processing and generation, children of the server span.
    fn stages(&self, reason: FinishReason, usage: Usage, t: &Timings) -> [Span; 3] {
        let trace = &self.context;
        let stage = |name: &str, from: Instant, to: Instant| {
            let (from, to) = (self.at(from), self.at(to.max(from)));
            Span::new(trace, span_id(), Some(trace.span_id), name.into(), Kind::Internal, from, to)
        };
        let first = t.first_token.unwrap_or(t.finished);
        let mut queue = stage("inference.queue", t.submitted, t.admitted);
        queue.set("switchyard.inference.stage", Some("queue"));
        let mut prefill = stage("inference.prefill", t.admitted, first);
        prefill.set("switchyard.inference.stage", Some("prefill"));
        prefill.set("gen_ai.usage.input_tokens", Some(u64::from(usage.prompt_tokens)));
        let cached = usage.cached_tokens;
        prefill.set("gen_ai.usage.cache_read.input_tokens", Some(u64::from(cached)));
        let evaluated = u64::from(usage.prompt_tokens.saturating_sub(cached));
        prefill.set("switchyard.inference.prompt_tokens_evaluated", Some(evaluated));
        let mut decode = stage("inference.decode", first, t.finished);
        decode.set("switchyard.inference.stage", Some("decode"));
        decode.set("gen_ai.usage.output_tokens", Some(u64::from(usage.completion_tokens)));
        let reasons = Value::Strs(vec![reason.as_str().to_owned()]);
        decode.attributes.push(("gen_ai.response.finish_reasons".into(), reasons));
        [queue, prefill, decode]
    }
}
