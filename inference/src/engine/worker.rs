//! The decode loop: the one thread that owns the llama.cpp context. Each step it drops slots whose
//! client left, admits queued jobs into idle slots (prefix-cache choice), puts one token per
//! generating slot plus prompt chunks into a single llama_batch, decodes, and samples per slot.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use tokio::sync::watch;

use super::prefix::{self, Candidate};
use super::slot::{Outcome, Slot};
use super::{Job, Loaded, Status, load};
use crate::config::Config;
use crate::metrics::Metrics;

/// How long an idle loop waits for a job before checking for shutdown again.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// The engine thread's body: load, announce readiness, decode until stopped.
pub fn main(
    config: &Config,
    jobs: Receiver<Job>,
    status: &watch::Sender<Status>,
    loaded: &OnceLock<Loaded>,
    stop: &AtomicBool,
    metrics: &Metrics,
) {
    let started = Instant::now();
    let (model, template) = match load::model(config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "model load failed");
            status.send_replace(Status::Failed(e));
            return;
        }
    };
    let model = Arc::new(model);
    let ctx = match load::context(&model, config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "context creation failed");
            status.send_replace(Status::Failed(e));
            return;
        }
    };
    let slot_ctx = ctx.n_ctx() / config.parallel;
    let _ = loaded.set(Loaded { model: model.clone(), template, slot_ctx });
    metrics.slots_total.set(i64::from(config.parallel));
    tracing::info!(
        slots = config.parallel,
        slot_ctx,
        threads = config.threads,
        n_gpu_layers = config.n_gpu_layers,
        load_ms = started.elapsed().as_millis() as u64,
        "model ready"
    );
    status.send_replace(Status::Ready);
    let mut worker = Worker::new(ctx, &model, config, slot_ctx, metrics);
    worker.run(&jobs, stop);
    status.send_replace(Status::Stopped);
}

struct Worker<'m> {
    ctx: LlamaContext<'m>,
    model: &'m LlamaModel,
    slots: Vec<Slot>,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    slot_ctx: u32,
    /// Steps decoded so far; also the clock for least-recently-used slot choice.
    step: u64,
    metrics: &'m Metrics,
    rate: Rate,
}

impl<'m> Worker<'m> {
    fn new(
        ctx: LlamaContext<'m>,
        model: &'m LlamaModel,
        config: &Config,
        slot_ctx: u32,
        metrics: &'m Metrics,
    ) -> Self {
        let batch_size = config.batch_size as usize;
        Self {
            ctx,
            model,
            slots: (0..config.parallel).map(|i| Slot::new(i as i32)).collect(),
            batch: LlamaBatch::new(batch_size, 1),
            batch_size,
            slot_ctx,
            step: 0,
            metrics,
            rate: Rate::new(),
        }
    }

    fn run(&mut self, jobs: &Receiver<Job>, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.drop_abandoned();
            if !self.admit(jobs) {
                break;
            }
            if self.busy() > 0 {
                self.step();
            }
        }
        for slot in &mut self.slots {
            slot.fail("the server is shutting down");
        }
        self.metrics.slots_busy.set(0);
    }

    fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.job.is_some()).count()
    }

    fn drop_abandoned(&mut self) {
        for slot in self.slots.iter_mut().filter(|s| s.abandoned()) {
            // The KV stays: what was decoded is still a valid prefix for later requests.
            slot.job = None;
            self.metrics.cancelled.inc();
        }
        self.metrics.slots_busy.set(self.busy() as i64);
    }

    /// Moves queued jobs into idle slots. Blocks briefly only when nothing is running. Returns
    /// false once the queue is closed and there is nothing left to do.
    fn admit(&mut self, jobs: &Receiver<Job>) -> bool {
        while self.slots.iter().any(|s| s.job.is_none()) {
            let job = if self.busy() > 0 {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => return true,
                }
            } else {
                match jobs.recv_timeout(IDLE_WAIT) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        self.rate.idle(self.metrics);
                        return true;
                    }
                    Err(RecvTimeoutError::Disconnected) => return false,
                }
            };
            self.metrics.queue_depth.dec();
            if job.events.is_closed() {
                self.metrics.cancelled.inc();
                continue;
            }
            self.metrics.queue_wait.observe(job.enqueued.elapsed().as_secs_f64());
            self.assign(job);
        }
        self.metrics.slots_busy.set(self.busy() as i64);
        true
    }

    /// Puts a job in the idle slot holding the longest prefix of its prompt, and trims that slot's
    /// KV to the shared prefix.
    fn assign(&mut self, job: Job) {
        let idle: Vec<_> = (self.slots.iter().enumerate())
            .filter(|(_, s)| s.job.is_none())
            .map(|(index, s)| Candidate { index, cached: &s.cached, last_used: s.last_used })
            .collect();
        let Some((index, common)) = prefix::choose(&idle, &job.prompt) else { return };
        // At least one prompt token must be decoded to get logits for the first sample.
        let mut reused = common.min(job.prompt.len().saturating_sub(1));
        let slot = &mut self.slots[index];
        let seq = u32::try_from(slot.seq).unwrap_or(0);
        let pos = u32::try_from(reused).unwrap_or(u32::MAX);
        if !matches!(self.ctx.clear_kv_cache_seq(Some(seq), Some(pos), None), Ok(true)) {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq), None, None);
            reused = 0;
        }
        slot.cached.truncate(reused);
        if reused > 0 {
            self.metrics.prefix_hits.inc();
            self.metrics.prompt_tokens_cached.inc_by(reused as u64);
        } else {
            self.metrics.prefix_misses.inc();
        }
        slot.last_used = self.step;
        slot.start(job, reused, self.slot_ctx, self.model.n_vocab());
    }

    /// One llama_batch: a token for every generating slot first, then prompt chunks up to the
    /// batch size; decode; sample for every slot that asked for logits.
    fn step(&mut self) {
        self.batch.clear();
        let mut budget = self.batch_size;
        let (mut gen_tokens, mut prompt_tokens) = (0u64, 0u64);
        // Generating slots first, so a long prompt never starves running streams.
        let order: Vec<usize> = {
            let (mut generating, mut rest): (Vec<_>, Vec<_>) =
                (0..self.slots.len()).partition(|&i| self.slots[i].generating());
            generating.append(&mut rest);
            generating
        };
        for i in order {
            if budget == 0 {
                break;
            }
            let slot = &mut self.slots[i];
            if slot.job.is_none() {
                continue;
            }
            let generating = slot.generating();
            let pos0 = slot.cached.len();
            let (toks, logits) = slot.next_tokens(budget);
            let last = toks.len().saturating_sub(1);
            let mut added = Ok(());
            for (k, tok) in toks.iter().enumerate() {
                let pos = i32::try_from(pos0 + k).unwrap_or(i32::MAX);
                added = added.and(self.batch.add(*tok, pos, &[slot.seq], logits && k == last));
            }
            if let Err(e) = added {
                slot.fail(&format!("batch: {e}"));
                let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
                continue;
            }
            if let Some(job) = slot.job_mut() {
                job.logits_at = logits.then(|| self.batch.n_tokens() - 1);
            }
            budget -= toks.len();
            if generating { gen_tokens += 1 } else { prompt_tokens += toks.len() as u64 }
        }
        if self.batch.n_tokens() == 0 {
            return;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            tracing::error!(error = %e, "llama_decode failed; failing the running requests");
            for (i, slot) in self.slots.iter_mut().enumerate().filter(|(_, s)| s.job.is_some()) {
                slot.fail(&format!("decode failed: {e}"));
                let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
            }
            return;
        }
        self.sample_all();
        self.step += 1;
        self.metrics.prompt_tokens_evaluated.inc_by(prompt_tokens);
        self.rate.add(gen_tokens, prompt_tokens, self.metrics);
    }

    fn sample_all(&mut self) {
        for slot in &mut self.slots {
            let Some(job) = slot.job_mut() else { continue };
            let Some(idx) = job.logits_at.take() else { continue };
            let tok = job.sample(&self.ctx, idx);
            if job.first_token.is_none() {
                self.metrics.ttft.observe(job.enqueued.elapsed().as_secs_f64());
            }
            self.metrics.generated_tokens.inc();
            slot.last_used = self.step;
            match slot.on_token(tok, self.model, self.slot_ctx) {
                Outcome::Continue => {}
                Outcome::Finished(reason) => self.metrics.finished(reason),
                Outcome::Gone => {
                    slot.job = None;
                    self.metrics.cancelled.inc();
                }
            }
        }
    }
}

/// Tokens per second over windows of about a second, for the gauges.
struct Rate {
    since: Instant,
    generated: u64,
    prompt: u64,
}

impl Rate {
    fn new() -> Self {
        Self { since: Instant::now(), generated: 0, prompt: 0 }
    }

    fn add(&mut self, generated: u64, prompt: u64, metrics: &Metrics) {
        self.generated += generated;
        self.prompt += prompt;
        let secs = self.since.elapsed().as_secs_f64();
        if secs >= 1.0 {
            metrics.gen_tokens_per_second.set(self.generated as f64 / secs);
            metrics.prompt_tokens_per_second.set(self.prompt as f64 / secs);
            *self = Self::new();
        }
    }

    fn idle(&mut self, metrics: &Metrics) {
        metrics.gen_tokens_per_second.set(0.0);
        metrics.prompt_tokens_per_second.set(0.0);
        *self = Self::new();
    }
}
