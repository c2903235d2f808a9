//! Checks what a plugin returns before the proxy acts on it: edits in bounds, on char boundaries
//! and not overlapping; upstream names that exist; statuses in range; every size bounded. A
//! decision that fails here is a plugin failure (`InvalidDecision`).

use std::collections::BTreeSet;

use super::bindings::{
    CacheDirective, Changes, Decision, Delta, ErrorReply, Escalation, Reply, Route, TextEdit,
};
use super::limits::decision as max;

/// Headers a plugin may not set: they belong to the proxy (framing, auth, routing).
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

type Check = Result<(), String>;

/// Validate a request-phase decision against the texts the plugin saw.
pub(crate) fn decision(d: &Decision, texts: &[&str], upstreams: &BTreeSet<String>) -> Check {
    match d {
        Decision::Proceed(c) => changes(c, texts, upstreams),
        Decision::Respond(Reply::Error(e)) => error_reply(e),
        Decision::Respond(Reply::Completion(text)) => {
            bounded("completion", text, max::MAX_BODY_BYTES)
        }
        Decision::Respond(Reply::Raw(raw)) => {
            if !(200..=599).contains(&raw.status) {
                return Err(format!("raw reply status {} is not 200..=599", raw.status));
            }
            if http::HeaderValue::from_str(&raw.content_type).is_err() {
                return Err("raw reply content-type is not a valid header value".into());
            }
            if raw.body.len() > max::MAX_BODY_BYTES {
                return Err(format!("raw reply body over {} bytes", max::MAX_BODY_BYTES));
            }
            Ok(())
        }
    }
}

fn changes(c: &Changes, texts: &[&str], upstreams: &BTreeSet<String>) -> Check {
    if let Some(r) = &c.route {
        route(r, upstreams)?;
    }
    edits(&c.edits, texts)?;
    match &c.cache {
        Some(CacheDirective::Store(e)) => {
            bounded("cache key", &e.key, max::MAX_CACHE_KEY_BYTES)?;
            if e.key.is_empty() || e.ttl_seconds == 0 || e.ttl_seconds > max::MAX_TTL_SECONDS {
                return Err("cache entry needs a key and a ttl of 1s..30 days".into());
            }
        }
        Some(CacheDirective::NoCache) | None => {}
    }
    if c.add_headers.len() > max::MAX_HEADERS {
        return Err(format!("more than {} headers", max::MAX_HEADERS));
    }
    for (name, value) in &c.add_headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(format!("header {lower} may not be set by a plugin"));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
            || name.len() + value.len() > max::MAX_HEADER_BYTES
        {
            return Err(format!("header {lower:?} is not a valid header"));
        }
    }
    if c.tags.len() > max::MAX_TAGS {
        return Err(format!("more than {} tags", max::MAX_TAGS));
    }
    for (k, v) in &c.tags {
        if k.is_empty() || k.len() + v.len() > max::MAX_TAG_BYTES {
            return Err(format!("tag key empty or tag over {} bytes", max::MAX_TAG_BYTES));
        }
    }
    Ok(())
}

fn route(r: &Route, upstreams: &BTreeSet<String>) -> Check {
    if r.fallbacks.len() > max::MAX_FALLBACKS {
        return Err(format!("more than {} fallbacks", max::MAX_FALLBACKS));
    }
    for name in std::iter::once(&r.upstream).chain(&r.fallbacks) {
        upstream(name, upstreams)?;
    }
    if let Some(m) = &r.model {
        bounded("model", m, max::MAX_NAME_BYTES)?;
    }
    Ok(())
}

fn upstream(name: &str, upstreams: &BTreeSet<String>) -> Check {
    if upstreams.contains(name) { Ok(()) } else { Err(format!("unknown upstream {name:?}")) }
}

/// Edits must address an existing text, lie in bounds and on char boundaries, and not overlap.
pub(crate) fn edits(edits: &[TextEdit], texts: &[&str]) -> Check {
    if edits.len() > max::MAX_EDITS {
        return Err(format!("more than {} edits", max::MAX_EDITS));
    }
    let replacement: usize = edits.iter().map(|e| e.replacement.len()).sum();
    if replacement > max::MAX_REPLACEMENT_BYTES {
        return Err(format!("over {} bytes of replacement text", max::MAX_REPLACEMENT_BYTES));
    }
    let mut spans: Vec<(u32, u32, u32)> = Vec::with_capacity(edits.len());
    for e in edits {
        let Some(text) = texts.get(e.message as usize) else {
            return Err(format!("edit of text {} of {}", e.message, texts.len()));
        };
        let (start, end) = (e.start as usize, e.end as usize);
        if start > end || end > text.len() {
            return Err(format!("edit range {start}..{end} out of bounds (len {})", text.len()));
        }
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return Err(format!("edit range {start}..{end} is not on char boundaries"));
        }
        spans.push((e.message, e.start, e.end));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        // Overlapping, or starting at the same offset (their order would be ambiguous).
        if w[0].0 == w[1].0 && (w[1].1 < w[0].2 || w[1].1 == w[0].1) {
            return Err(format!("edits {}..{} and {}..{} overlap", w[0].1, w[0].2, w[1].1, w[1].2));
        }
    }
    Ok(())
}

/// Apply validated edits (see [`edits`]) to the texts; returns which texts changed.
pub(crate) fn apply_edits(texts: &mut [String], edits: &[TextEdit], changed: &mut [bool]) {
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    sorted.sort_unstable_by_key(|e| (e.message, e.start));
    // One pass per edited text: copy the unedited runs and the replacements into a new string,
    // rather than shifting the rest of the text once per edit.
    for group in sorted.chunk_by(|a, b| a.message == b.message) {
        let index = group[0].message as usize;
        let Some(text) = texts.get_mut(index) else { continue };
        let added: usize = group.iter().map(|e| e.replacement.len()).sum();
        let mut out = String::with_capacity(text.len() + added);
        let mut at = 0;
        for e in group {
            // `edits` has checked bounds, boundaries and overlaps; never panic regardless.
            let Some(kept) = text.get(at..e.start as usize) else { continue };
            out.push_str(kept);
            out.push_str(&e.replacement);
            at = e.end as usize;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        *text = out;
        if let Some(c) = changed.get_mut(index) {
            *c = true;
        }
    }
}

pub(crate) fn error_reply(e: &ErrorReply) -> Check {
    if !(400..=599).contains(&e.status) {
        return Err(format!("error status {} is not 400..=599", e.status));
    }
    bounded("error message", &e.message, max::MAX_NAME_BYTES)?;
    bounded("error type", &e.kind, max::MAX_NAME_BYTES)
}

pub(crate) fn escalation(e: &Escalation, upstreams: &BTreeSet<String>) -> Check {
    upstream(&e.upstream, upstreams)?;
    bounded("reason", &e.reason, max::MAX_NAME_BYTES)?;
    if let Some(m) = &e.model {
        bounded("model", m, max::MAX_NAME_BYTES)?;
    }
    Ok(())
}

pub(crate) fn deltas(ds: &[Delta]) -> Check {
    let total: usize = ds.iter().map(|d| d.text.len()).sum();
    if total > max::MAX_BODY_BYTES || ds.len() > max::MAX_EDITS {
        return Err("too much replacement text".into());
    }
    Ok(())
}

fn bounded(what: &str, s: &str, limit: usize) -> Check {
    if s.len() > limit { Err(format!("{what} over {limit} bytes")) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(message: u32, start: u32, end: u32, replacement: &str) -> TextEdit {
        TextEdit { message, start, end, replacement: replacement.into() }
    }

    #[test]
    fn adjacent_edits_apply_in_one_pass() {
        let es = [edit(0, 0, 2, "AB"), edit(0, 2, 4, ""), edit(1, 3, 3, "!")];
        let texts = ["abcdef", "héllo"];
        edits(&es, &texts).unwrap();
        let mut owned: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let mut changed = vec![false, false, false];
        apply_edits(&mut owned, &es, &mut changed);
        assert_eq!(owned, ["ABef", "hé!llo"]);
        assert_eq!(changed, [true, true, false]);
    }

    #[test]
    fn bad_edits_are_refused() {
        let texts = ["héllo"];
        assert!(edits(&[edit(0, 1, 2, "x")], &texts).is_err(), "inside é");
        assert!(edits(&[edit(0, 0, 9, "x")], &texts).is_err(), "past the end");
        assert!(edits(&[edit(0, 3, 2, "x")], &texts).is_err(), "reversed");
        assert!(edits(&[edit(1, 0, 0, "x")], &texts).is_err(), "no such message");
        assert!(edits(&[edit(0, 0, 3, "x"), edit(0, 1, 4, "y")], &texts).is_err(), "overlap");
        // Two edits starting at one offset would apply in an arbitrary order.
        assert!(edits(&[edit(0, 3, 3, "x"), edit(0, 3, 3, "y")], &texts).is_err(), "same start");
    }
}
