//! Fuzz target `request_parser`: a request body for one of the four POST endpoints (the first
//! byte picks which), through the parser, the plugin text entries and their write-back.
//!
//! Invariants:
//! - parsing never panics; a refused body is a 400 in OpenAI's error shape, blamed on the client;
//! - an unedited request forwards the client's bytes exactly;
//! - an edited request re-serialises to JSON that parses again to the same request: every unknown
//!   field keeps its raw text, and serialising twice gives the same bytes (so does the cache key);
//! - writing every text entry back unchanged leaves the entries as they were.

use bytes::Bytes;
use serde_json::Value;

use super::assert_openai_error;
use crate::error::{Blame, ProxyError};
use crate::request::{Endpoint, MessageContent, ParsedRequest, RequestBody};
use crate::texts;

const ENDPOINTS: [Endpoint; 4] = [
    Endpoint::ChatCompletions,
    Endpoint::Completions,
    Endpoint::Embeddings,
    Endpoint::ImagesGenerations,
];

/// Runs one input: byte 0 picks the endpoint, the rest is the body.
pub fn request_parser(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let endpoint = ENDPOINTS[usize::from(selector) % ENDPOINTS.len()];
    let raw = Bytes::copy_from_slice(body);
    match ParsedRequest::parse(endpoint, raw.clone()) {
        Err(error) => assert_client_error(&error),
        Ok(parsed) => {
            assert_eq!(parsed.to_bytes().expect("unedited bytes"), raw, "unedited body changed");
            let _ = (parsed.stream(), parsed.model());
            round_trip(&parsed);
            entries_write_back(&parsed);
        }
    }
}

fn assert_client_error(error: &ProxyError) {
    assert_eq!(error.blame(), Blame::Client, "{error}");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST, "{error}");
    let json = error.to_json();
    assert_openai_error(&json);
    assert_eq!(json["error"]["type"], "invalid_request_error");
    let code = error.code();
    assert!(matches!(code, "invalid_json" | "invalid_type" | "invalid_request"), "code {code}");
}

/// Serialise the typed form, parse it again, serialise again: same bytes, same unknown fields,
/// same cache identity.
fn round_trip(parsed: &ParsedRequest) {
    let mut edited = parsed.clone();
    edited.edited = true;
    let once = edited.to_bytes().expect("re-serialising a parsed request");
    let again = ParsedRequest::parse(parsed.endpoint, once.clone()).unwrap_or_else(|e| {
        panic!("re-serialised body does not parse: {e}\n{}", String::from_utf8_lossy(&once))
    });
    assert_eq!(unknown_fields(&parsed.body), unknown_fields(&again.body), "unknown fields lost");
    let mut again_edited = again.clone();
    again_edited.edited = true;
    let twice = again_edited.to_bytes().expect("re-serialising again");
    assert_same_json(&once, &twice, "serialising is not stable");
    let identity = |r: &ParsedRequest| {
        let mut out = Vec::new();
        r.write_identity(&mut out).expect("cache identity");
        out
    };
    assert_same_json(&identity(parsed), &identity(&again), "cache identity changed");
}

/// The same bytes, or the same JSON up to one ULP of a float: serde_json's default number parser
/// (without its `float_roundtrip` feature, which would rebuild wasmtime) may read a printed float
/// one ULP off, so a float in an edited request can move in its last bit (found by fuzzing:
/// `118446744073709551615` in a token array; see BENCHMARKS.md "Fuzzing").
fn assert_same_json(a: &[u8], b: &[u8], what: &str) {
    if a == b {
        return;
    }
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    let same = matches!((parse(a), parse(b)), (Some(x), Some(y)) if same_value(&x, &y));
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    assert!(same, "{what}:\n{a}\n{b}");
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            (x - y).abs() <= x.abs().max(y.abs()) * 2.0 * f64::EPSILON
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((kx, x), (ky, y))| kx == ky && same_value(x, y))
        }
        _ => a == b,
    }
}

/// Every untyped field, at every level that keeps them, as (path, raw JSON text).
fn unknown_fields(body: &RequestBody) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |at: &str, extra: &crate::request::Extra| {
        out.extend(extra.iter().map(|(k, v)| (format!("{at}.{k}"), v.get().to_string())));
    };
    match body {
        RequestBody::Chat(chat) => {
            add("", &chat.extra);
            for (i, message) in chat.messages.iter().enumerate() {
                add(&format!("messages[{i}]"), &message.extra);
                if let Some(MessageContent::Parts(parts)) = &message.content {
                    for (k, part) in parts.iter().enumerate() {
                        add(&format!("messages[{i}].content[{k}]"), &part.extra);
                    }
                }
            }
        }
        RequestBody::Completion(c) => add("", &c.extra),
        RequestBody::Embedding(e) => add("", &e.extra),
        RequestBody::Image(i) => add("", &i.extra),
    }
    out
}

/// What a plugin that changes nothing would cause: every editable entry written back as it was
/// shown. The request must still serialise, and show the same entries again.
fn entries_write_back(parsed: &ParsedRequest) {
    let (entries, layout) = texts::entries(&parsed.body);
    // The endpoint's own texts first, then only the host's `field:`/`binary:` entries: a client
    // cannot make one of its texts look like the host's (a redactor skips `binary:` entries).
    let reserved = |role: &str| [texts::FIELD, texts::BINARY].iter().any(|p| role.starts_with(p));
    let own = entries.iter().take_while(|e| !reserved(&e.role)).count();
    assert!(entries[own..].iter().all(|e| reserved(&e.role)), "entry roles out of order");
    if let RequestBody::Chat(chat) = &parsed.body {
        assert_eq!(own, chat.messages.len(), "a chat message shown as a host entry");
    }
    let editable: Vec<bool> = entries.iter().map(|e| !e.role.starts_with(texts::BINARY)).collect();
    let mut body = parsed.body.clone();
    texts::write_back(&mut body, &layout, &entries, &editable)
        .unwrap_or_else(|why| panic!("writing unchanged entries back failed: {why}"));
    let (after, _) = texts::entries(&body);
    let same = |a: &crate::plugin::Message, b: &crate::plugin::Message| {
        a.role == b.role
            && (a.content == b.content
                || matches!(
                    (serde_json::from_str(&a.content), serde_json::from_str(&b.content)),
                    (Ok(x), Ok(y)) if same_value(&x, &y)
                ))
    };
    let unchanged =
        entries.len() == after.len() && entries.iter().zip(&after).all(|(a, b)| same(a, b));
    assert!(unchanged, "writing unchanged entries back changed them:\n{entries:?}\n{after:?}");
    let mut rewritten = parsed.clone();
    rewritten.body = body;
    rewritten.edited = true;
    let bytes = rewritten.to_bytes().expect("serialising after write-back");
    if let Err(e) = ParsedRequest::parse(parsed.endpoint, bytes) {
        panic!("the body after write-back does not parse: {e}");
    }
}
