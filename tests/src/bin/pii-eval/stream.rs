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
use switchyard::plugin::{EventOutcome, PluginRegistry};

use crate::{corpus, event, proceed, request};

/// Text a model might add that must pass unchanged: unknown placeholders, stray `<`.
const TAILS: &[&str] = &[" <EMAIL_99> stays.", " a < b and <PHONE", " <", "", " <<EMAIL_>"];

pub async fn evaluate(reg: &PluginRegistry, rng: &mut Rng, answers: usize) -> anyhow::Result<()> {
    let (mut leaks, mut mismatches, mut late, mut events_total, mut placeholders) = (0, 0, 0, 0, 0);
    let mut unwatched = 0;
    for _ in 0..answers {
        let originals: Vec<String> = (0..2)
            .map(|_| corpus::message(rng, 0.9).iter().map(|p| p.text.as_str()).collect())
            .collect();
        let mut p = proceed(reg, request(originals.clone())).await?;
        let tail = TAILS[rng.usize(0..TAILS.len())];
        let redacted: Vec<String> =
            p.request.messages.iter().map(|m| format!("{}{tail}", m.content)).collect();
        placeholders += redacted.iter().map(|r| r.matches('<').count()).sum::<usize>();
        let want: Vec<String> = originals.iter().map(|o| format!("{o}{tail}")).collect();
        if p.watch.is_empty() {
            // Nothing was found, so there is nothing to restore and nothing to watch.
            if p.request.messages.iter().any(|m| m.content.contains('<'))
                && originals.iter().all(|o| !o.contains('<'))
            {
                bail!("placeholders issued but the answer is not watched");
            }
            unwatched += 1;
            continue;
        }
        // Random pieces per choice, then a random interleaving.
        let mut queues: Vec<Vec<String>> = redacted.iter().map(|r| split(rng, r)).collect();
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
            let outcome = event(&mut p, seq, c as u32, &piece, last);
            seq += 1;
            events_total += 1;
            match outcome {
                EventOutcome::Pass => seen[c].push_str(&piece),
                EventOutcome::Emit(ds) => {
                    for d in ds {
                        let dc = d.choice as usize;
                        if finished.get(dc).copied().unwrap_or(true) || dc != c {
                            late += 1;
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
                leaks += 1;
            }
        }
        if let EventOutcome::Emit(ds) = p.watch.on_stream_end() {
            late += ds.iter().filter(|d| !d.text.is_empty()).count();
            for d in ds {
                if let Some(s) = seen.get_mut(d.choice as usize) {
                    s.push_str(&d.text);
                }
            }
        }
        for k in 0..2 {
            if seen[k] != want[k] {
                mismatches += 1;
                if mismatches <= 5 {
                    eprintln!("RESTORE MISMATCH\n  want {:?}\n  got  {:?}", want[k], seen[k]);
                }
            }
        }
    }
    println!(
        "| streamed answers (2 choices each) | events | `<` in answers | leaks | restore mismatches | late text |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {events_total} | {placeholders} | {leaks} | {mismatches} | {late} |\n",
        answers - unwatched
    );
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
