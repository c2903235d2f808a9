//! The stream part of the evaluation: redacted messages come back as a two-choice streamed
//! answer, cut at random char boundaries and interleaved, through on-event and on-stream-end.
//!
//! A **leak** is an event after which the text a client has for a choice is not a prefix of the
//! expected answer (a placeholder or part of one shown instead of its value, or any text out of
//! order). A **restore mismatch** is a finished choice whose text is not the expected answer
//! (the original, with only the placeholders this request issued replaced). **Late text** is
//! text for a choice after the event that carried its finish reason.

use anyhow::bail;
use fastrand::Rng;
use switchyard::plugin::{EventOutcome, PluginRegistry, Proceed};

use switchyard_tests::pii_eval::request;

use crate::{event, proceed};

/// Text a model might add that must pass unchanged: unknown placeholders, stray `<`.
const TAILS: &[&str] = &[" <EMAIL_99> stays.", " a < b and <PHONE", " <", "", " <<EMAIL_>"];

/// What streaming some answers gave.
#[derive(Default)]
struct Tally {
    answers: usize,
    events: usize,
    leaks: usize,
    mismatches: usize,
    late: usize,
}

/// The model echoes the redacted messages (two corpus messages per request, one per choice);
/// the placeholders must come back as the original values, whatever the event boundaries.
pub async fn evaluate(
    reg: &PluginRegistry,
    rng: &mut Rng,
    corpus: &[&str],
    answers: usize,
) -> anyhow::Result<()> {
    let mut t = Tally::default();
    let mut placeholders = 0;
    for _ in 0..answers {
        let originals: Vec<&str> = (0..2).map(|_| corpus[rng.usize(0..corpus.len())]).collect();
        let mut p = proceed(reg, request(&originals)).await?;
        let tail = TAILS[rng.usize(0..TAILS.len())];
        let redacted: Vec<String> =
            p.request.messages.iter().map(|m| format!("{}{tail}", m.content)).collect();
        placeholders += redacted.iter().map(|r| r.matches('<').count()).sum::<usize>();
        let want: Vec<String> = originals.iter().map(|o| format!("{o}{tail}")).collect();
        if p.watch.is_empty() {
            // Nothing was found, so there is nothing to restore and nothing to watch.
            if p.request.messages.iter().zip(&originals).any(|(m, o)| m.content != *o) {
                bail!("text was edited but the answer is not watched");
            }
            continue;
        }
        play(&mut p, rng, &redacted, &want, &mut t).await?;
    }
    println!(
        "| streamed answers (2 choices each) | events | `<` in answers | leaks | restore mismatches | late text |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {placeholders} | {} | {} | {} |\n",
        t.answers, t.events, t.leaks, t.mismatches, t.late
    );
    Ok(())
}

/// Streams `said` (one text per choice) in random pieces, interleaved, the last piece of each
/// choice with its finish reason, and checks what a client would see against `want`.
async fn play(
    p: &mut Proceed,
    rng: &mut Rng,
    said: &[String],
    want: &[String],
    t: &mut Tally,
) -> anyhow::Result<()> {
    t.answers += 1;
    let mut queues: Vec<Vec<String>> = said.iter().map(|r| split(rng, r)).collect();
    for q in &mut queues {
        q.reverse();
    }
    let mut seen = [String::new(), String::new()];
    let mut finished = [false, false];
    let mut seq = 0;
    while queues.iter().any(|q| !q.is_empty()) {
        let c = if queues[0].is_empty() {
            1
        } else if queues[1].is_empty() {
            0
        } else {
            rng.usize(0..2)
        };
        let piece = queues[c].pop().unwrap_or_default();
        let last = queues[c].is_empty();
        let outcome = event(p, seq, c as u32, &piece, last).await;
        seq += 1;
        t.events += 1;
        match outcome {
            EventOutcome::Pass => seen[c].push_str(&piece),
            EventOutcome::Emit(ds) => {
                for d in ds {
                    let dc = d.choice as usize;
                    if finished.get(dc).copied().unwrap_or(true) || dc != c {
                        t.late += 1;
                    }
                    if let Some(s) = seen.get_mut(dc) {
                        s.push_str(&d.text);
                    }
                }
            }
            other => bail!("unexpected outcome {other:?}"),
        }
        finished[c] |= last;
        if (0..2).any(|k| !want[k].starts_with(&seen[k])) {
            t.leaks += 1;
        }
    }
    if let EventOutcome::Emit(ds) = p.watch.on_stream_end().await {
        t.late += ds.iter().filter(|d| !d.text.is_empty()).count();
        for d in ds {
            if let Some(s) = seen.get_mut(d.choice as usize) {
                s.push_str(&d.text);
            }
        }
    }
    for k in 0..2 {
        if seen[k] != want[k] {
            t.mismatches += 1;
            if t.mismatches <= 5 {
                eprintln!("STREAM MISMATCH\n  want {:?}\n  got  {:?}", want[k], seen[k]);
            }
        }
    }
    Ok(())
}

/// `text` cut at random char boundaries into pieces of 1 to 16 bytes (at least one piece).
fn split(rng: &mut Rng, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let mut j = (i + rng.usize(1..=16)).min(text.len());
        while !text.is_char_boundary(j) {
            j += 1;
        }
        out.push(text[i..j].to_string());
        i = j;
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}
