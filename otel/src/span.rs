//! Spans as Switchyard builds them (finished, with their times), the W3C trace context they
//! continue (`traceparent`, `tracestate`), and random ids.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An attribute's key: almost always a constant, so no allocation per span.
pub type Key = Cow<'static, str>;

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string array (e.g. `gen_ai.response.finish_reasons`).
    Strs(Vec<String>),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Str(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Str(text)
    }
}

impl From<u64> for Value {
    fn from(number: u64) -> Self {
        Self::Int(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(number: f64) -> Self {
        Self::Float(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Self::Bool(flag)
    }
}

/// OTLP's span kinds (the numbers are the protocol's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// OTLP's status codes (the numbers are the protocol's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Ok = 1,
    Error = 2,
}

/// A point in a span's life.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub unix_nanos: u64,
    pub attributes: Vec<(Key, Value)>,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub trace_state: String,
    pub name: String,
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(Key, Value)>,
    pub events: Vec<Event>,
    pub status: Option<(StatusCode, String)>,
}

impl Span {
    /// A span of `trace`, from `start` to `end` (Unix nanoseconds), with no attributes yet.
    pub fn new(
        trace: &TraceContext,
        span_id: [u8; 8],
        parent_span_id: Option<[u8; 8]>,
        name: String,
        kind: Kind,
        start: u64,
        end: u64,
    ) -> Self {
        Self {
            trace_id: trace.trace_id,
            span_id,
            parent_span_id,
            trace_state: trace.trace_state.clone(),
            name,
            kind,
            start_unix_nanos: start,
            end_unix_nanos: end,
            attributes: Vec::new(),
            events: Vec::new(),
            status: None,
        }
    }

    /// Adds an attribute; `None` values are left out.
    pub fn set(&mut self, key: &'static str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.attributes.push((Cow::Borrowed(key), value.into()));
        }
    }

    /// The attribute `key`, if set (for tests and the spans' own checks).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// The trace a request belongs to: continued from the client's `traceparent`, or new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The client's span, parent of the proxy's server span.
    pub parent_span_id: Option<[u8; 8]>,
    /// The proxy's server span.
    pub span_id: [u8; 8],
    /// Whether this request's spans are recorded and exported.
    pub sampled: bool,
    /// The client's `tracestate`, passed on unchanged.
    pub trace_state: String,
}

impl TraceContext {
    /// Continues the client's trace (`traceparent`, version 00) or starts a new one. A new trace
    /// is sampled when its id falls under `ratio`; a continued one follows the client's sampled
    /// flag (parent-based sampling, as OpenTelemetry SDKs do by default).
    pub fn start(traceparent: Option<&str>, tracestate: Option<&str>, ratio: f64) -> Self {
        if let Some((trace_id, parent, sampled)) = traceparent.and_then(parse_traceparent) {
            return Self {
                trace_id,
                parent_span_id: Some(parent),
                span_id: span_id(),
                sampled,
                trace_state: tracestate.unwrap_or_default().to_string(),
            };
        }
        let trace_id = trace_id();
        Self {
            trace_id,
            parent_span_id: None,
            span_id: span_id(),
            sampled: sampled_by_ratio(&trace_id, ratio),
            trace_state: String::new(),
        }
    }

    /// [`TraceContext::start`] from a request's `traceparent` and `tracestate` headers.
    pub fn from_headers(headers: &http::HeaderMap, ratio: f64) -> Self {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Self::start(header("traceparent"), header("tracestate"), ratio)
    }

    /// The trace id as 32 hex digits (as in `traceparent`).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The server span's id as 16 hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The `traceparent` to send with a request made by span `span`.
    pub fn traceparent(&self, span: [u8; 8]) -> String {
        let mut header = String::with_capacity(55);
        header.push_str("00-");
        push_hex(&mut header, &self.trace_id);
        header.push('-');
        push_hex(&mut header, &span);
        header.push_str(if self.sampled { "-01" } else { "-00" });
        header
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], bool)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || flags.len() != 2 {
        return None;
    }
    let trace: [u8; 16] = unhex(trace)?;
    let parent: [u8; 8] = unhex(parent)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent, flags & 1 == 1))
}

/// Sampled when the trace id's last 8 bytes, as a fraction of 2⁶⁴, fall under `ratio`: the same
/// trace gets the same answer everywhere that samples this way.
fn sampled_by_ratio(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) as f64) < ratio * 18_446_744_073_709_551_616.0
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(2 * bytes.len());
    push_hex(&mut text, bytes);
    text
}

/// Appends `bytes` as lower-case hex digits (every request's `traceparent` is built this way, so
/// no formatting machinery per byte).
fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N
        || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A random, non-zero span id.
pub fn span_id() -> [u8; 8] {
    fastrand::u64(1..).to_be_bytes()
}

/// A random, non-zero trace id.
pub fn trace_id() -> [u8; 16] {
    fastrand::u128(1..).to_be_bytes()
}

/// A duration in nanoseconds, as OTLP's timestamps count.
pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_trace_is_continued_with_its_sampled_flag() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::start(Some(header), Some("vendor=x"), 0.0);
        assert_eq!(hex(&context.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_span_id.map(|p| hex(&p)).as_deref(), Some("00f067aa0ba902b7"));
        assert!(context.sampled, "the client's flag wins over the ratio");
        assert_eq!(context.trace_state, "vendor=x");
        let sent = context.traceparent([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(sent, "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01");
        let unsampled = header.replace("-01", "-00");
        assert!(!TraceContext::start(Some(&unsampled), None, 1.0).sampled);
    }

    #[test]
    fn malformed_trace_parents_start_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            let context = TraceContext::start(Some(bad), None, 1.0);
            assert_eq!(context.parent_span_id, None, "{bad:?}");
            assert!(context.sampled);
        }
    }

    #[test]
    fn the_ratio_samples_by_trace_id() {
        let mut id = [0u8; 16];
        id[8] = 0x10; // 1/16 of the range
        assert!(sampled_by_ratio(&id, 0.1));
        assert!(!sampled_by_ratio(&id, 0.05));
        assert!(!sampled_by_ratio(&id, 0.0));
        assert!(sampled_by_ratio(&id, 1.0));
    }
}
