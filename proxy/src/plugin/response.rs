//! The response phase, for the plugins whose decision set `watch-response`: their instances live
//! on (holding their instance slots) and see the whole response, or each SSE event and the end of
//! the stream. Watchers run in chain order; what one emits is what the next one sees. Failures go
//! through each plugin's policy: closed refuses, open drops that watcher and passes the text on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tracing::instrument;

use super::bindings::{
    Delta, ErrorReply, Escalation, EventAction, LlmResponse, ResponseAction, StreamEvent,
};
use super::config::FailurePolicy;
use super::error::{FailureKind, PluginFailure};
use super::instance::LiveInstance;
use super::validate;

/// What to do with a whole response.
#[derive(Debug)]
pub enum ResponseOutcome {
    /// Send the response with these choice texts; `edited[i]` says which choice changed (the
    /// others can pass through byte for byte).
    Send { choices: Vec<String>, edited: Vec<bool> },
    /// Drop the response; answer with this OpenAI-shaped error.
    Abort { plugin: Arc<str>, reply: ErrorReply },
    /// Run the request again on `escalation.upstream` (the pipeline should allow this once per
    /// request). The watchers stay alive and will see the new response.
    Escalate { plugin: Arc<str>, escalation: Escalation },
    /// A fail-closed watcher failed: answer 5xx, send nothing of the response.
    Refuse(PluginFailure),
}

/// What to do with one SSE event (or, from [`ResponseWatch::on_stream_end`], with the end).
#[derive(Debug)]
pub enum EventOutcome {
    /// Send the event exactly as it came.
    Pass,
    /// Send these text deltas in place of the event's text (none: send no text now). The
    /// event's other fields (finish_reason, usage) are still the pipeline's to send.
    Emit(Vec<Delta>),
    /// End the stream with an error event (or answer with it, if nothing was committed).
    Abort { plugin: Arc<str>, reply: ErrorReply },
    /// Only returned while `committed` is false: drop this response, run the request again on
    /// `escalation.upstream`.
    Escalate { plugin: Arc<str>, escalation: Escalation },
    /// A fail-closed watcher failed: cut the stream (error event if committed, 5xx if not).
    Refuse(PluginFailure),
}

/// The instances that watch this request's response. Empty for most requests; dropping it frees
/// the instances and their memory.
#[derive(Default)]
pub struct ResponseWatch {
    watchers: Vec<LiveInstance>,
    upstreams: Arc<BTreeSet<String>>,
    /// Fail-open watchers that failed and were dropped.
    pub skipped: Vec<PluginFailure>,
    /// Where each call is noted for the request's trace, when set.
    trail: Option<Arc<crate::trail::Trail>>,
}

impl std::fmt::Debug for ResponseWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.watchers.iter().map(|w| &*w.plugin.name).collect();
        f.debug_struct("ResponseWatch").field("watchers", &names).finish()
    }
}

/// One watcher's verdict on one input.
enum Verdict {
    Out(Vec<Delta>, bool),
    Stop(EventOutcome),
}

impl ResponseWatch {
    pub(crate) fn new(upstreams: Arc<BTreeSet<String>>) -> Self {
        Self { watchers: Vec::new(), upstreams, skipped: Vec::new(), trail: None }
    }

    /// Notes every watcher call on `trail` (the request's trace shows them).
    pub fn note_to(&mut self, trail: Arc<crate::trail::Trail>) {
        self.trail = Some(trail);
    }

    /// Notes one call of watcher `i` that started at `started`.
    fn note(
        &self,
        i: usize,
        phase: &'static str,
        outcome: Result<&'static str, &FailureKind>,
        started: Instant,
    ) {
        let (Some(trail), Some(w)) = (&self.trail, self.watchers.get(i)) else { return };
        let (decision, failure) = match outcome {
            Ok(decision) => (decision, None),
            Err(kind) => ("failed", Some(kind.label())),
        };
        let plugin = &w.plugin;
        let duration = started.elapsed();
        trail.plugin_call(
            &plugin.name,
            &plugin.sha256,
            phase,
            decision,
            failure,
            started,
            duration,
        );
    }

    pub(crate) fn push(&mut self, live: LiveInstance) {
        self.watchers.push(live);
    }

    /// No plugin watches: the pipeline can skip the response phase entirely.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Names of the watching plugins, in chain order.
    pub fn plugins(&self) -> Vec<Arc<str>> {
        self.watchers.iter().map(|w| Arc::clone(&w.plugin.name)).collect()
    }

    /// Show a whole non-streamed response to every watcher in turn.
    #[instrument(level = "debug", skip_all, fields(plugins = self.watchers.len()))]
    pub async fn on_response(&mut self, mut resp: LlmResponse) -> ResponseOutcome {
        let mut edited = vec![false; resp.choices.len()];
        let mut i = 0;
        while i < self.watchers.len() {
            let w = &mut self.watchers[i];
            let started = Instant::now();
            let result = w.on_response(&resp).await;
            w.plugin.stats.record_call(started.elapsed());
            let action = match result {
                Ok(ResponseAction::Edit(edits)) => {
                    let texts: Vec<&str> = resp.choices.iter().map(String::as_str).collect();
                    validate::edits(&edits, &texts)
                        .map(|()| ResponseAction::Edit(edits))
                        .map_err(FailureKind::InvalidDecision)
                }
                Ok(ResponseAction::Abort(e)) => validate::error_reply(&e)
                    .map(|()| ResponseAction::Abort(e))
                    .map_err(FailureKind::InvalidDecision),
                Ok(ResponseAction::Escalate(e)) => validate::escalation(&e, &self.upstreams)
                    .map(|()| ResponseAction::Escalate(e))
                    .map_err(FailureKind::InvalidDecision),
                other => other,
            };
            let label = match &action {
                Ok(ResponseAction::Pass) => Ok("pass"),
                Ok(ResponseAction::Edit(_)) => Ok("edit"),
                Ok(ResponseAction::Abort(_)) => Ok("abort"),
                Ok(ResponseAction::Escalate(_)) => Ok("escalate"),
                Err(kind) => Err(kind),
            };
            self.note(i, "response", label, started);
            let w = &mut self.watchers[i];
            match action {
                Ok(ResponseAction::Pass) => {}
                Ok(ResponseAction::Edit(edits)) => {
                    validate::apply_edits(&mut resp.choices, &edits, &mut edited)
                }
                Ok(ResponseAction::Abort(reply)) => {
                    let plugin = Arc::clone(&w.plugin.name);
                    return ResponseOutcome::Abort { plugin, reply };
                }
                Ok(ResponseAction::Escalate(escalation)) => {
                    let plugin = Arc::clone(&w.plugin.name);
                    return ResponseOutcome::Escalate { plugin, escalation };
                }
                Err(kind) => {
                    if let Some(refusal) = self.fail(i, kind) {
                        return ResponseOutcome::Refuse(refusal);
                    }
                    continue;
                }
            }
            i += 1;
        }
        ResponseOutcome::Send { choices: resp.choices, edited }
    }

    /// Show one SSE event to every watcher in turn.
    pub async fn on_event(&mut self, ev: StreamEvent) -> EventOutcome {
        let mut current: Option<Vec<Delta>> = None;
        let mut i = 0;
        while i < self.watchers.len() {
            let inputs = match &current {
                None => vec![ev.clone()],
                Some(ds) => ds.iter().map(|d| derived(&ev, d)).collect(),
            };
            let mut out = Vec::new();
            let mut changed = current.is_some();
            let mut dropped = false;
            for input in inputs {
                match self.step(i, input).await {
                    Ok(Verdict::Out(ds, c)) => {
                        out.extend(ds);
                        changed |= c;
                    }
                    Ok(Verdict::Stop(outcome)) => return outcome,
                    Err(Some(refusal)) => return EventOutcome::Refuse(refusal),
                    Err(None) => {
                        dropped = true;
                        break;
                    }
                }
            }
            if dropped {
                continue; // watcher i is gone; the same input goes to the next one
            }
            current = changed.then_some(out);
            i += 1;
        }
        match current {
            None => EventOutcome::Pass,
            Some(ds) => EventOutcome::Emit(ds),
        }
    }

    /// The stream ended: flush what each watcher held, through the watchers after it.
    pub async fn on_stream_end(&mut self) -> EventOutcome {
        let mut carried: Vec<Delta> = Vec::new();
        let mut i = 0;
        let end = StreamEvent {
            seq: u32::MAX,
            committed: true,
            choice: 0,
            text: String::new(),
            finish_reason: None,
        };
        'watchers: while i < self.watchers.len() {
            let mut out = Vec::new();
            for d in &carried {
                match self.step(i, derived(&end, d)).await {
                    Ok(Verdict::Out(ds, _)) => out.extend(ds),
                    Ok(Verdict::Stop(outcome)) => return outcome,
                    Err(Some(refusal)) => return EventOutcome::Refuse(refusal),
                    // Watcher i failed open and is gone: the same text goes to the next one.
                    Err(None) => continue 'watchers,
                }
            }
            let started = Instant::now();
            let flushed = self.watchers[i].on_stream_end().await.and_then(|ds| {
                validate::deltas(&ds).map(|()| ds).map_err(FailureKind::InvalidDecision)
            });
            self.note(i, "stream", flushed.as_ref().map(|_| "flush"), started);
            match flushed {
                Ok(ds) => {
                    out.extend(ds);
                    carried = out;
                    i += 1;
                }
                Err(kind) => {
                    if let Some(refusal) = self.fail(i, kind) {
                        return EventOutcome::Refuse(refusal);
                    }
                }
            }
        }
        EventOutcome::Emit(carried)
    }

    /// Run watcher `i` on one event. `Err(Some)` = fail-closed refusal; `Err(None)` = the watcher
    /// failed open and was removed.
    async fn step(
        &mut self,
        i: usize,
        input: StreamEvent,
    ) -> Result<Verdict, Option<PluginFailure>> {
        let committed = input.committed;
        let started = Instant::now();
        let w = &mut self.watchers[i];
        let action = w.on_event(&input).await.and_then(|a| {
            let check = match &a {
                EventAction::Replace(ds) => validate::deltas(ds),
                EventAction::Abort(e) => validate::error_reply(e),
                EventAction::Escalate(_) if committed => {
                    Err("escalation after the response was committed".into())
                }
                EventAction::Escalate(e) => validate::escalation(e, &self.upstreams),
                EventAction::Pass | EventAction::Hold => Ok(()),
            };
            check.map(|()| a).map_err(FailureKind::InvalidDecision)
        });
        let plugin = Arc::clone(&w.plugin.name);
        let label = match &action {
            Ok(EventAction::Pass) => Ok("pass"),
            Ok(EventAction::Replace(_)) => Ok("replace"),
            Ok(EventAction::Hold) => Ok("hold"),
            Ok(EventAction::Abort(_)) => Ok("abort"),
            Ok(EventAction::Escalate(_)) => Ok("escalate"),
            Err(kind) => Err(kind),
        };
        self.note(i, "stream", label, started);
        match action {
            Ok(EventAction::Pass) => {
                Ok(Verdict::Out(vec![Delta { choice: input.choice, text: input.text }], false))
            }
            Ok(EventAction::Replace(ds)) => Ok(Verdict::Out(ds, true)),
            Ok(EventAction::Hold) => Ok(Verdict::Out(Vec::new(), true)),
            Ok(EventAction::Abort(reply)) => {
                Ok(Verdict::Stop(EventOutcome::Abort { plugin, reply }))
            }
            Ok(EventAction::Escalate(escalation)) => {
                Ok(Verdict::Stop(EventOutcome::Escalate { plugin, escalation }))
            }
            Err(kind) => Err(self.fail(i, kind)),
        }
    }

    /// Watcher `i` failed: drop its instance; a fail-closed failure is returned for refusal.
    fn fail(&mut self, i: usize, kind: FailureKind) -> Option<PluginFailure> {
        let w = self.watchers.remove(i);
        let failure = w.plugin.failure(kind);
        if failure.policy == FailurePolicy::Closed {
            return Some(failure);
        }
        self.skipped.push(failure);
        None
    }
}

fn derived(ev: &StreamEvent, d: &Delta) -> StreamEvent {
    StreamEvent {
        seq: ev.seq,
        committed: ev.committed,
        choice: d.choice,
        text: d.text.clone(),
        finish_reason: None,
    }
}
