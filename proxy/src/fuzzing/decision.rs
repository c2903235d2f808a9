//! Fuzz target `decision`: a plugin's decision (and its response-phase answers) checked against
//! the texts it saw, as the host checks every decision before acting on it.
//!
//! The input is text, one item per line (so seeds read like decisions and libFuzzer's mutations
//! of digits reach every bound); unknown lines are ignored. `\n`, `\t`, `\\` and `\xHH` (a byte)
//! are escapes in texts and strings; numbers are wrapped into their field's width.
//!
//! ```text
//! text Hello <EMAIL_1>, caf\xc3\xa9      a text the plugin saw (entry i = i-th `text` line)
//! upstream local                          an upstream the config has
//! route local model=m fallbacks=a,b       route (model and fallbacks optional)
//! edit 0 6 15 bob@example.com             edit: text, start, end, replacement
//! edits 5000 0 0 1 1 x                    many edits: count, text, first start, length, step,
//!                                         replacement
//! cache 60 key / nocache                  cache directive
//! header x-tenant blue / tag k v / watch
//! error 400 policy_violation message      answer now (instead of proceeding)
//! completion text / raw 200 text/plain body
//! escalate big model=m reason / delta 0 text   response-phase answers
//! ```
//!
//! Invariants: nothing panics; edits are accepted exactly when an independent check says they
//! are in bounds, on char boundaries, disjoint and within the limits; accepted edits apply to
//! exactly what a plain one-by-one splice gives; an accepted decision only names known upstreams
//! and valid headers, and its answer becomes a response with its own status.

use std::collections::BTreeSet;

use crate::plugin::bindings::{Changes, Decision};
use crate::plugin::limits::decision as max;
use crate::plugin::validate;
use crate::plugin::{
    CacheDirective, CacheEntry, Delta, ErrorReply, Escalation, RawReply, Reply, Route, TextEdit,
};

/// Headers the host refuses from plugins; restated here, not imported, so the check is independent.
const FORBIDDEN: &[&str] = &[
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

/// Everything one input describes.
#[derive(Default)]
struct Input {
    texts: Vec<String>,
    upstreams: BTreeSet<String>,
    changes: Option<Changes>,
    reply: Option<Reply>,
    escalations: Vec<Escalation>,
    deltas: Vec<Delta>,
}

/// Runs one input.
pub fn decision(data: &[u8]) {
    let input = parse(&String::from_utf8_lossy(data));
    let texts: Vec<&str> = input.texts.iter().map(String::as_str).collect();
    let changes = input.changes.unwrap_or_else(empty_changes);
    check_edits(&changes.edits, &texts);
    let decision = match input.reply {
        Some(reply) => Decision::Respond(reply),
        None => Decision::Proceed(changes),
    };
    if validate::decision(&decision, &texts, &input.upstreams).is_ok() {
        accepted(&decision, &texts, &input.upstreams);
    }
    for e in &input.escalations {
        if validate::escalation(e, &input.upstreams).is_ok() {
            assert!(input.upstreams.contains(&e.upstream), "escalation to {:?}", e.upstream);
            assert!(e.reason.len() <= max::MAX_NAME_BYTES);
        }
    }
    let total: usize = input.deltas.iter().map(|d| d.text.len()).sum();
    let deltas_ok = total <= max::MAX_BODY_BYTES && input.deltas.len() <= max::MAX_EDITS;
    assert_eq!(validate::deltas(&input.deltas).is_ok(), deltas_ok, "deltas");
}

/// Edits: the host's verdict equals the independent one, and accepted edits apply as spliced.
fn check_edits(edits: &[TextEdit], texts: &[&str]) {
    let verdict = validate::edits(edits, texts);
    assert_eq!(verdict.is_ok(), edits_valid(edits, texts), "edits verdict {verdict:?}");
    if verdict.is_err() {
        return;
    }
    let mut applied: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let mut changed = vec![false; texts.len()];
    validate::apply_edits(&mut applied, edits, &mut changed);
    let mut expected: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    // From the back, so earlier offsets stay valid.
    sorted.sort_by_key(|e| std::cmp::Reverse((e.message, e.start)));
    for e in sorted {
        let text = &mut expected[e.message as usize];
        text.replace_range(e.start as usize..e.end as usize, &e.replacement);
    }
    assert_eq!(applied, expected, "edits applied differently from a plain splice");
    for (i, flag) in changed.iter().enumerate() {
        assert_eq!(*flag, edits.iter().any(|e| e.message as usize == i), "changed flag of {i}");
    }
}

/// The contract of `text-edit` (plugin.wit) and the limits, checked the slow, obvious way.
fn edits_valid(edits: &[TextEdit], texts: &[&str]) -> bool {
    let replacement: usize = edits.iter().map(|e| e.replacement.len()).sum();
    if edits.len() > max::MAX_EDITS || replacement > max::MAX_REPLACEMENT_BYTES {
        return false;
    }
    let in_bounds = |e: &TextEdit| {
        texts
            .get(e.message as usize)
            .is_some_and(|t| t.get(e.start as usize..e.end as usize).is_some())
    };
    if !edits.iter().all(in_bounds) {
        return false;
    }
    // Disjoint and no shared start, per text: in start order, each edit must begin at or after
    // the furthest end seen so far in its text (a sweep, so thousands of edits stay cheap).
    let mut order: Vec<&TextEdit> = edits.iter().collect();
    order.sort_by_key(|e| (e.message, e.start));
    let mut furthest: Option<(u32, u32, u32)> = None; // (text, start of last, furthest end)
    for e in order {
        if let Some((message, last_start, end)) = furthest
            && message == e.message
        {
            if e.start < end || e.start == last_start {
                return false;
            }
            furthest = Some((message, e.start, end.max(e.end)));
        } else {
            furthest = Some((e.message, e.start, e.end));
        }
    }
    true
}

/// What the pipeline relies on once a decision is accepted.
fn accepted(decision: &Decision, texts: &[&str], upstreams: &BTreeSet<String>) {
    match decision {
        Decision::Proceed(c) => {
            assert!(edits_valid(&c.edits, texts), "accepted invalid edits");
            if let Some(r) = &c.route {
                let names = std::iter::once(&r.upstream).chain(&r.fallbacks);
                assert!(
                    names.clone().all(|n| upstreams.contains(n)),
                    "route to an unknown upstream"
                );
                assert!(r.fallbacks.len() <= max::MAX_FALLBACKS);
            }
            for (name, value) in &c.add_headers {
                assert!(!FORBIDDEN.contains(&name.to_ascii_lowercase().as_str()), "header {name}");
                assert!(http::HeaderName::try_from(name.as_str()).is_ok(), "header name {name:?}");
                assert!(http::HeaderValue::try_from(value.as_str()).is_ok(), "header {value:?}");
            }
            if let Some(CacheDirective::Store(e)) = &c.cache {
                assert!(!e.key.is_empty() && (1..=max::MAX_TTL_SECONDS).contains(&e.ttl_seconds));
            }
        }
        Decision::Respond(reply) => {
            let expected = match reply {
                Reply::Error(e) => e.status,
                Reply::Completion(_) => 200,
                Reply::Raw(raw) => raw.status,
            };
            for stream in [false, true] {
                let response = crate::wire::reply_response(reply.clone(), stream, Some("m"));
                assert_eq!(response.status().as_u16(), expected, "answer status");
            }
        }
    }
}

fn empty_changes() -> Changes {
    Changes {
        route: None,
        edits: Vec::new(),
        cache: None,
        add_headers: Vec::new(),
        tags: Vec::new(),
        watch_response: false,
    }
}

fn parse(text: &str) -> Input {
    let mut input = Input::default();
    for line in text.lines() {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        item(&mut input, word, rest);
    }
    input
}

/// Applies one line. Kept flat on purpose: one arm per item of the format above.
fn item(input: &mut Input, word: &str, rest: &str) {
    let mut words = rest.split(' ');
    let mut number = || words.next().and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
    match word {
        "text" => input.texts.push(unescape(rest)),
        "upstream" => {
            input.upstreams.insert(unescape(rest));
        }
        "edit" => {
            let (message, start, end) = (number() as u32, number() as u32, number() as u32);
            let replacement = unescape(&words.collect::<Vec<_>>().join(" "));
            changes(input).edits.push(TextEdit { message, start, end, replacement });
        }
        "edits" => {
            let count = (number() as usize).min(max::MAX_EDITS + 2);
            let (message, first, len, step) =
                (number() as u32, number() as u32, number() as u32, number() as u32);
            let replacement = unescape(&words.collect::<Vec<_>>().join(" "));
            let edits = &mut changes(input).edits;
            for k in 0..count as u32 {
                let start = first.wrapping_add(k.wrapping_mul(step));
                let end = start.wrapping_add(len);
                edits.push(TextEdit { message, start, end, replacement: replacement.clone() });
            }
        }
        "route" => {
            let (upstream, model, fallbacks) = route_words(rest);
            changes(input).route = Some(Route { upstream, model, fallbacks });
        }
        "cache" => {
            let ttl_seconds = number() as u32;
            let key = unescape(&words.collect::<Vec<_>>().join(" "));
            changes(input).cache = Some(CacheDirective::Store(CacheEntry { key, ttl_seconds }));
        }
        "nocache" => changes(input).cache = Some(CacheDirective::NoCache),
        "header" | "tag" => {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            let pair = (unescape(k), unescape(v));
            let c = changes(input);
            if word == "header" { c.add_headers.push(pair) } else { c.tags.push(pair) }
        }
        "watch" => changes(input).watch_response = true,
        "error" => {
            let status = number() as u16;
            let kind = unescape(words.next().unwrap_or_default());
            let message = unescape(&words.collect::<Vec<_>>().join(" "));
            input.reply = Some(Reply::Error(ErrorReply { status, message, kind }));
        }
        "completion" => input.reply = Some(Reply::Completion(unescape(rest))),
        "raw" => {
            let status = number() as u16;
            let content_type = unescape(words.next().unwrap_or_default());
            let body = unescape(&words.collect::<Vec<_>>().join(" ")).into_bytes();
            input.reply = Some(Reply::Raw(RawReply { status, content_type, body }));
        }
        "escalate" => {
            let (upstream, model, rest) = route_words(rest);
            input.escalations.push(Escalation { upstream, model, reason: rest.join(" ") });
        }
        "delta" => {
            let choice = number() as u32;
            let text = unescape(&words.collect::<Vec<_>>().join(" "));
            input.deltas.push(Delta { choice, text });
        }
        _ => {}
    }
}

fn changes(input: &mut Input) -> &mut Changes {
    input.changes.get_or_insert_with(empty_changes)
}

/// `name [model=m] [fallbacks=a,b] [other words]`: the name, the model and the fallbacks (or,
/// for an escalation, the remaining words).
fn route_words(rest: &str) -> (String, Option<String>, Vec<String>) {
    let mut words = rest.split(' ');
    let name = unescape(words.next().unwrap_or_default());
    let mut model = None;
    let mut others = Vec::new();
    for word in words {
        if let Some(m) = word.strip_prefix("model=") {
            model = Some(unescape(m));
        } else if let Some(list) = word.strip_prefix("fallbacks=") {
            others.extend(list.split(',').map(unescape));
        } else {
            others.push(unescape(word));
        }
    }
    (name, model, others)
}

/// `\n`, `\t`, `\\` and `\xHH`; bytes that do not form UTF-8 become U+FFFD.
fn unescape(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
