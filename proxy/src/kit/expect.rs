//! Compares what the host made of a fixture case (the chain's outcome, the response phase's
//! answer) with what the fixture expects, as a list of readable problems.

use std::collections::BTreeMap;

use super::fixture::{Outcome, RequestExpect, ResponseFixture, StreamFixture};
use crate::plugin::{
    CachePolicy, EventOutcome, LlmResponse, Proceed, Reply, RequestOutcome, ResponseOutcome,
    ResponseWatch, StreamEvent,
};

/// Check the request phase; returns the merged changes when the chain proceeded.
pub fn request(
    want: &RequestExpect,
    got: RequestOutcome,
    problems: &mut Vec<String>,
) -> Option<Proceed> {
    match (want.outcome, got) {
        (Outcome::Proceed, RequestOutcome::Proceed(p)) => {
            proceed(want, &p, problems);
            Some(*p)
        }
        (Outcome::Respond, RequestOutcome::Respond { reply, .. }) => {
            let (status, kind) = match &reply {
                Reply::Error(e) => (e.status, e.kind.clone()),
                Reply::Completion(_) => (200, "completion".into()),
                Reply::Raw(r) => (r.status, "raw".into()),
            };
            same("status", want.status, status, problems);
            same("kind", want.kind.clone(), kind, problems);
            None
        }
        (Outcome::Refuse, RequestOutcome::Refuse(failure)) => {
            same("status", want.status, failure.http_status(), problems);
            None
        }
        (want, got) => {
            problems.push(format!("outcome: expected {want:?}, got {}", describe(&got)));
            None
        }
    }
}

fn proceed(want: &RequestExpect, p: &Proceed, problems: &mut Vec<String>) {
    let texts: Vec<String> = p.request.messages.iter().map(|m| m.content.clone()).collect();
    if let Some(expected) = &want.messages
        && *expected != texts
    {
        problems.push(format!("messages: expected {expected:?}, got {texts:?}"));
    }
    for secret in &want.never_forwarded {
        if let Some(i) = texts.iter().position(|t| t.contains(secret.as_str())) {
            problems.push(format!("message {i} still contains {secret:?}"));
        }
    }
    if let Some(route) = &want.route {
        let got = p.route.as_ref().map(|r| r.upstream.clone());
        if *route != got {
            problems.push(format!("route: expected {route:?}, got {got:?}"));
        }
    }
    let tags: BTreeMap<&str, &str> =
        p.request.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    subset("tag", &want.tags, &tags, problems);
    let headers: BTreeMap<&str, &str> =
        p.add_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    subset("header", &want.headers, &headers, problems);
    if let Some(cache) = &want.cache {
        let got = match p.cache {
            CachePolicy::Default => "default",
            CachePolicy::NoCache => "no-cache",
            CachePolicy::Store { .. } => "store",
        };
        same("cache", Some(cache.as_str()), got, problems);
    }
    same("watch", want.watch, !p.watch.is_empty(), problems);
}

/// Show a whole answer to the watchers and check what the client would get.
pub async fn response(
    want: &ResponseFixture,
    watch: &mut ResponseWatch,
    problems: &mut Vec<String>,
) {
    let resp = LlmResponse {
        upstream: want.upstream.clone(),
        model: None,
        status: 200,
        finish_reasons: want.choices.iter().map(|_| Some("stop".into())).collect(),
        choices: want.choices.clone(),
    };
    let (outcome, choices) = match watch.on_response(resp).await {
        ResponseOutcome::Send { choices, .. } => ("send", Some(choices)),
        ResponseOutcome::Abort { .. } => ("abort", None),
        ResponseOutcome::Escalate { .. } => ("escalate", None),
        ResponseOutcome::Refuse(_) => ("refuse", None),
    };
    same("response outcome", Some(want.outcome.as_str()), outcome, problems);
    if let (Some(expected), Some(got)) = (&want.expect, &choices)
        && expected != got
    {
        problems.push(format!("response choices: expected {expected:?}, got {got:?}"));
    }
}

/// Feed a stream to the watchers event by event, then end it; check what the client received.
pub async fn stream(want: &StreamFixture, watch: &mut ResponseWatch, problems: &mut Vec<String>) {
    let mut sent: BTreeMap<u32, String> = BTreeMap::new();
    let mut emitted: Vec<String> = Vec::new();
    let mut outcome = "complete";
    for (seq, ev) in want.events.iter().enumerate() {
        let (choice, text, finish) = ev.parts();
        let event = StreamEvent {
            seq: u32::try_from(seq).unwrap_or(u32::MAX),
            committed: !emitted.is_empty(),
            choice,
            text: text.to_string(),
            finish_reason: finish.map(str::to_string),
        };
        match watch.on_event(event).await {
            EventOutcome::Pass => emit(&mut sent, &mut emitted, choice, text),
            EventOutcome::Emit(ds) => {
                ds.iter().for_each(|d| emit(&mut sent, &mut emitted, d.choice, &d.text))
            }
            other => {
                outcome = stop(&other);
                break;
            }
        }
    }
    if outcome == "complete" {
        match watch.on_stream_end().await {
            EventOutcome::Pass => {}
            EventOutcome::Emit(ds) => {
                ds.iter().for_each(|d| emit(&mut sent, &mut emitted, d.choice, &d.text))
            }
            other => outcome = stop(&other),
        }
    }
    same("stream outcome", Some(want.outcome.as_str()), outcome, problems);
    if let Some(expected) = &want.expect
        && *expected != sent
    {
        problems.push(format!("stream text: expected {expected:?}, got {sent:?}"));
    }
    for bad in &want.never_emitted {
        if let Some(d) = emitted.iter().find(|d| d.contains(bad.as_str())) {
            problems.push(format!("a delta contained {bad:?}: {d:?}"));
        }
    }
}

fn emit(sent: &mut BTreeMap<u32, String>, emitted: &mut Vec<String>, choice: u32, text: &str) {
    if !text.is_empty() {
        sent.entry(choice).or_default().push_str(text);
        emitted.push(text.to_string());
    }
}

fn stop(outcome: &EventOutcome) -> &'static str {
    match outcome {
        EventOutcome::Pass | EventOutcome::Emit(_) => "complete",
        EventOutcome::Abort { .. } => "abort",
        EventOutcome::Escalate { .. } => "escalate",
        EventOutcome::Refuse(_) => "refuse",
    }
}

fn describe(got: &RequestOutcome) -> String {
    match got {
        RequestOutcome::Proceed(_) => "Proceed".into(),
        RequestOutcome::Respond { reply, .. } => format!("Respond({reply:?})"),
        RequestOutcome::Refuse(f) => format!("Refuse({})", f.public_message()),
    }
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: Option<T>,
    got: T,
    problems: &mut Vec<String>,
) {
    if let Some(want) = want
        && want != got
    {
        problems.push(format!("{what}: expected {want:?}, got {got:?}"));
    }
}

fn subset(
    what: &str,
    want: &BTreeMap<String, String>,
    got: &BTreeMap<&str, &str>,
    problems: &mut Vec<String>,
) {
    for (k, v) in want {
        match got.get(k.as_str()) {
            Some(g) if g == v => {}
            other => problems.push(format!("{what} {k}: expected {v:?}, got {other:?}")),
        }
    }
}
