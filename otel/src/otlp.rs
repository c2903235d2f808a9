//! OTLP's protobuf encoding of spans (`ExportTraceServiceRequest`, opentelemetry-proto
//! `collector/trace/v1`), written by hand: a few message types, so no code generator and no
//! protobuf runtime in the proxy. The tests decode it with the `opentelemetry-proto` crate.

use crate::span::{Span, Value};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, LEN);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    fn message(&mut self, field: u32, inner: Message) {
        self.bytes(field, &inner.0);
    }

    fn uint(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        self.varint(value);
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        self.key(field, FIXED64);
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn fixed32(&mut self, field: u32, value: u32) {
        self.key(field, FIXED32);
        self.0.extend_from_slice(&value.to_le_bytes());
    }
}

/// `ExportTraceServiceRequest` with one resource (`service.name`) and one scope.
pub fn export_request(service_name: &str, spans: &[Span]) -> Vec<u8> {
    let mut resource = Message::default();
    resource.message(1, key_value("service.name", &Value::Str(service_name.to_string())));
    let mut scope = Message::default();
    scope.string(1, "switchyard");
    scope.string(2, env!("CARGO_PKG_VERSION"));
    let mut scope_spans = Message::default();
    scope_spans.message(1, scope);
    for span in spans {
        scope_spans.message(2, span_message(span));
    }
    let mut resource_spans = Message::default();
    resource_spans.message(1, resource);
    resource_spans.message(2, scope_spans);
    let mut request = Message::default();
    request.message(1, resource_spans);
    request.0
}

/// `opentelemetry.proto.trace.v1.Span`.
fn span_message(span: &Span) -> Message {
    let mut m = Message::default();
    m.bytes(1, &span.trace_id);
    m.bytes(2, &span.span_id);
    if !span.trace_state.is_empty() {
        m.string(3, &span.trace_state);
    }
    if let Some(parent) = span.parent_span_id {
        m.bytes(4, &parent);
    }
    m.string(5, &span.name);
    m.uint(6, span.kind as u64);
    m.fixed64(7, span.start_unix_nanos);
    m.fixed64(8, span.end_unix_nanos);
    for (key, value) in &span.attributes {
        m.message(9, key_value(key, value));
    }
    for event in &span.events {
        let mut e = Message::default();
        e.fixed64(1, event.unix_nanos);
        e.string(2, &event.name);
        for (key, value) in &event.attributes {
            e.message(3, key_value(key, value));
        }
        m.message(11, e);
    }
    if let Some((code, message)) = &span.status {
        let mut s = Message::default();
        if !message.is_empty() {
            s.string(2, message);
        }
        s.uint(3, *code as u64);
        m.message(15, s);
    }
    // W3C trace flags (sampled) in the low byte.
    m.fixed32(16, 1);
    m
}

/// `KeyValue { key, AnyValue value }`.
fn key_value(key: &str, value: &Value) -> Message {
    let mut kv = Message::default();
    kv.string(1, key);
    kv.message(2, any_value(value));
    kv
}

/// `AnyValue`: one of string (1), bool (2), int64 (3), double (4), array (5).
fn any_value(value: &Value) -> Message {
    let mut any = Message::default();
    match value {
        Value::Str(text) => any.string(1, text),
        Value::Bool(flag) => any.uint(2, u64::from(*flag)),
        // int64 as a varint: two's complement for negatives, as protobuf does.
        Value::Int(number) => any.uint(3, *number as u64),
        Value::Float(number) => any.fixed64(4, number.to_bits()),
        Value::Strs(texts) => {
            // `ArrayValue { repeated AnyValue values = 1 }`.
            let mut array = Message::default();
            for text in texts {
                let mut item = Message::default();
                item.string(1, text);
                array.message(1, item);
            }
            any.message(5, array);
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut m = Message::default();
        m.varint(1);
        m.varint(300);
        m.varint(u64::MAX);
        assert_eq!(m.0[..3], [0x01, 0xac, 0x02]);
        assert_eq!(m.0.len(), 3 + 10);
    }

    #[test]
    fn a_key_value_is_field_one_and_two() {
        let kv = key_value("k", &Value::Int(5));
        // key: field 1 (len) "k"; value: field 2 (len) AnyValue { int_value (3, varint) 5 }.
        assert_eq!(kv.0, [0x0a, 1, b'k', 0x12, 2, 0x18, 5]);
    }

    #[test]
    fn a_string_array_is_an_array_value_of_strings() {
        let any = any_value(&Value::Strs(vec!["a".into(), "bc".into()]));
        // array_value (5, len 11): values (1, len 3) { string_value "a" }, (1, len 4) { "bc" }.
        let expected = [0x2a, 11, 0x0a, 3, 0x0a, 1, b'a', 0x0a, 4, 0x0a, 2, b'b', b'c'];
        assert_eq!(any.0, expected);
    }
}
