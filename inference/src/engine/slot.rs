//! One slot: a KV-cache sequence, the tokens it holds (the prefix cache), and the request it is
//! serving, if any: its prompt progress, sampler, limits and output.

use std::time::Instant;

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use super::text::{Piece, TextOut};
use super::{Event, FinishReason, Job, Timings, Usage};

/// A KV sequence and what is using it.
pub struct Slot {
    /// llama.cpp sequence id = index.
    pub seq: i32,
    /// Tokens whose KV is in this sequence, positions 0..len. Kept after a request ends: that is
    /// the prefix cache.
    pub cached: Vec<LlamaToken>,
    /// Step counter value at the last use, for least-recently-used choice.
    pub last_used: u64,
    pub job: Option<Active>,
}

/// The request a slot is serving.
pub struct Active {
    events: mpsc::UnboundedSender<Event>,
    prompt: Vec<LlamaToken>,
    /// The token sampled last step, decoded in the next one.
    pending: Option<LlamaToken>,
    sampler: LlamaSampler,
    max_tokens: u32,
    usage: Usage,
    out: TextOut,
    /// Where this slot's logits are in the current batch, if it asked for any.
    pub logits_at: Option<i32>,
    pub enqueued: Instant,
    pub first_token: Option<Instant>,
    submitted: Instant,
    admitted: Instant,
}

/// How a slot's turn in a step ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Finished(FinishReason),
    /// The client went away.
    Gone,
}

impl Slot {
    pub fn new(seq: i32) -> Self {
        Self { seq, cached: Vec::new(), last_used: 0, job: None }
    }

    /// Takes a job whose first `reused` prompt tokens are already in `cached` (already trimmed).
    pub fn start(&mut self, job: Job, reused: usize, slot_ctx: u32, n_vocab: i32) {
        let prompt_len = job.prompt.len();
        let room = slot_ctx.saturating_sub(u32::try_from(prompt_len).unwrap_or(u32::MAX));
        let max_tokens = job.max_tokens.map_or(room, |m| m.min(room));
        self.job = Some(Active {
            events: job.events,
            sampler: job.sampling.sampler(n_vocab),
            prompt: job.prompt,
            pending: None,
            max_tokens,
            usage: Usage {
                prompt_tokens: u32::try_from(prompt_len).unwrap_or(u32::MAX),
                cached_tokens: u32::try_from(reused).unwrap_or(u32::MAX),
                completion_tokens: 0,
            },
            out: TextOut::new(job.stop),
            logits_at: None,
            enqueued: job.enqueued,
            first_token: None,
            submitted: job.submitted,
            admitted: Instant::now(),
        });
    }

    /// Whether the client of the running job has gone away.
    pub fn abandoned(&self) -> bool {
        self.job.as_ref().is_some_and(|j| j.events.is_closed())
    }

    /// Tokens this slot wants decoded this step, at most `budget`, with whether the last one needs
    /// logits. Each returned token is at position `cached.len()` + its index, and is recorded in
    /// `cached` now: a failed decode clears the whole slot.
    pub fn next_tokens(&mut self, budget: usize) -> (Vec<LlamaToken>, bool) {
        let Some(job) = self.job.as_mut() else { return (Vec::new(), false) };
        if let Some(tok) = job.pending.take() {
            self.cached.push(tok);
            return (vec![tok], true);
        }
        let fed = self.cached.len();
        let rest = job.prompt.get(fed..).unwrap_or_default();
        let n = rest.len().min(budget);
        let toks = rest[..n].to_vec();
        self.cached.extend_from_slice(&toks);
        (toks, n == rest.len() && n > 0)
    }

    /// Handles the token sampled for this slot: streams its text, applies stop/EOG/length.
    pub fn on_token(&mut self, tok: LlamaToken, model: &LlamaModel, slot_ctx: u32) -> Outcome {
        let Some(job) = self.job.as_mut() else { return Outcome::Continue };
        job.first_token.get_or_insert_with(Instant::now);
        let vocab = model.vocab();
        if vocab.is_eog(tok) {
            return self.finish(FinishReason::Stop);
        }
        job.usage.completion_tokens += 1;
        let piece = vocab.token_to_piece(tok, false, None);
        let (text, stopped) = match job.out.push(&piece) {
            Piece::Text(t) => (t, false),
            Piece::Stopped(t) => (t, true),
        };
        if !text.is_empty() && job.events.send(Event::Text(text)).is_err() {
            return Outcome::Gone;
        }
        if stopped {
            return self.finish(FinishReason::Stop);
        }
        // The next decode puts this token at position cached.len(); it must fit the slot.
        if job.usage.completion_tokens >= job.max_tokens
            || self.cached.len() + 1 >= slot_ctx as usize
        {
            return self.finish(FinishReason::Length);
        }
        job.pending = Some(tok);
        Outcome::Continue
    }

    fn finish(&mut self, reason: FinishReason) -> Outcome {
        let Some(mut job) = self.job.take() else { return Outcome::Finished(reason) };
        let rest = job.out.finish();
        if !rest.is_empty() {
            let _ = job.events.send(Event::Text(rest));
        }
        let timings = Timings {
            submitted: job.submitted,
            admitted: job.admitted,
            first_token: job.first_token,
            finished: Instant::now(),
        };
        let _ = job.events.send(Event::Done(reason, job.usage, timings));
        Outcome::Finished(reason)
    }

    /// Ends the job with an error; the caller clears the KV.
    pub fn fail(&mut self, message: &str) {
        if let Some(job) = self.job.take() {
            let _ = job.events.send(Event::Failed(message.to_owned()));
        }
        self.cached.clear();
    }

    pub fn job_mut(&mut self) -> Option<&mut Active> {
        self.job.as_mut()
    }
}

impl Active {
    pub fn sample(&mut self, ctx: &llama_cpp_2::context::LlamaContext<'_>, idx: i32) -> LlamaToken {
        self.sampler.sample(ctx, idx)
    }
}

impl Slot {
    /// Whether the slot is past its prompt and decoding one token per step.
    pub fn generating(&self) -> bool {
        self.job.as_ref().is_some_and(|j| j.pending.is_some())
    }
}
