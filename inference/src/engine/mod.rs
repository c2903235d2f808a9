//! The engine: one thread that owns the llama.cpp context and runs the decode loop, and the
//! handle the HTTP side uses to submit jobs to it through a bounded queue.
//!
//! - `load`: backend init and model/context creation (on the engine thread);
//! - `worker`: the continuous-batching decode loop;
//! - `slot`: one sequence's state (KV tokens, sampler, output);
//! - `prefix`: which idle slot a new prompt reuses;
//! - `text`: UTF-8 reassembly and stop strings;
//! - `sampling`: OpenAI parameters to a llama.cpp sampler chain.

mod load;
mod prefix;
mod sampling;
mod slot;
mod text;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use tokio::sync::{mpsc, watch};

use crate::api::Prompt;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub use sampling::SamplingParams;

/// Where the engine is in its life; /healthz shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Loading,
    Ready,
    Failed(String),
    Stopped,
}

/// Why a generation ended, in OpenAI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Token counts for `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV came from the prefix cache instead of being evaluated.
    pub cached_tokens: u32,
    pub completion_tokens: u32,
}

/// When a job passed each stage on the engine thread, for its trace spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Handed to the engine's queue.
    pub submitted: Instant,
    /// Given a slot: queue wait ends, prompt processing (prefill) starts.
    pub admitted: Instant,
    /// The first token sampled: the prompt is processed, generation (decode) starts.
    pub first_token: Option<Instant>,
    /// The last token sampled (or the stop found).
    pub finished: Instant,
}

/// What the engine sends back for one job, in order: text pieces, then exactly one end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Text(String),
    Done(FinishReason, Usage, Timings),
    Failed(String),
}

/// One request, tokenized and checked, waiting for a slot.
pub struct Job {
    pub prompt: Vec<LlamaToken>,
    pub sampling: SamplingParams,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// Closed receiver = the client went away: the slot is freed at the next step.
    pub events: mpsc::UnboundedSender<Event>,
    /// When the request arrived (queue-wait and time-to-first-token metrics count from here).
    pub enqueued: Instant,
    /// When it was handed to the queue (the queue span starts here).
    pub submitted: Instant,
}

/// What exists once the model is loaded; shared with the HTTP side for tokenizing.
pub struct Loaded {
    pub model: Arc<LlamaModel>,
    /// The GGUF's chat template; `None` when the model has none (chat is then refused).
    pub template: Option<LlamaChatTemplate>,
    /// Context per slot: the longest prompt + completion one request can have.
    pub slot_ctx: u32,
}

/// The HTTP side's handle on the engine thread.
pub struct Engine {
    queue: SyncSender<Job>,
    status: watch::Receiver<Status>,
    loaded: Arc<std::sync::OnceLock<Loaded>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    config: Config,
}

impl Engine {
    /// Starts the engine thread; the model loads there while the server already answers.
    pub fn start(config: &Config, metrics: Arc<Metrics>) -> Result<Self, crate::Error> {
        let (queue, jobs) = std::sync::mpsc::sync_channel(config.queue_size as usize);
        let (status_tx, status) = watch::channel(Status::Loading);
        let loaded = Arc::new(std::sync::OnceLock::new());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("llama-engine".to_owned()).spawn({
            let (config, loaded, stop, metrics) =
                (config.clone(), loaded.clone(), stop.clone(), metrics.clone());
            move || worker::main(&config, jobs, &status_tx, &loaded, &stop, &metrics)
        })?;
        Ok(Self {
            queue,
            status,
            loaded,
            stop,
            thread: Mutex::new(Some(thread)),
            metrics,
            config: config.clone(),
        })
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    pub fn loaded(&self) -> Result<&Loaded, ApiError> {
        self.loaded.get().ok_or_else(|| match &*self.status.borrow() {
            Status::Failed(e) => ApiError::unavailable(format!("model failed to load: {e}")),
            Status::Stopped => ApiError::unavailable("engine stopped"),
            _ => ApiError::unavailable("model is loading"),
        })
    }

    /// Renders and tokenizes a prompt, checking it fits a slot. Blocking: call off the runtime.
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, ApiError> {
        let loaded = self.loaded()?;
        let model = &loaded.model;
        let text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Chat(messages) => {
                let template = loaded.template.as_ref().ok_or_else(|| {
                    ApiError::invalid(
                        "no_chat_template",
                        "This model has no chat template; use /v1/completions",
                    )
                })?;
                let msgs = messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::invalid("invalid_value", e.to_string()))?;
                model
                    .apply_chat_template(template, &msgs, true)
                    .map_err(|e| ApiError::internal(format!("chat template failed: {e}")))?
            }
        };
        let vocab = model.vocab();
        // Special tokens in the text are parsed, as llama-server does, so templates work.
        let add_bos = vocab.should_add_bos();
        let tokens = vocab.tokenize(text.as_bytes(), add_bos, true);
        if tokens.is_empty() {
            return Err(ApiError::invalid(
                "invalid_value",
                "The prompt is empty after tokenization",
            ));
        }
        if tokens.len() >= loaded.slot_ctx as usize {
            let mut e = ApiError::invalid(
                "context_length_exceeded",
                format!(
                    "The prompt is {} tokens, but a request may use at most {} tokens of context \
                     (prompt + completion; --ctx-size {} / --parallel {}), which leaves room for a \
                     prompt of at most {} tokens.",
                    tokens.len(),
                    loaded.slot_ctx,
                    self.config.ctx_size,
                    self.config.parallel,
                    loaded.slot_ctx - 1
                ),
            );
            let field = if matches!(prompt, Prompt::Chat(_)) { "messages" } else { "prompt" };
            e.param = Some(field.to_owned());
            return Err(e);
        }
        Ok(tokens)
    }

    /// Queues a job, or refuses at once with 429 when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.metrics.queue_depth.inc();
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth.dec();
                match e {
                    TrySendError::Full(_) => {
                        self.metrics.rejected.inc();
                        Err(ApiError::queue_full(self.config.queue_size))
                    }
                    TrySendError::Disconnected(_) => Err(ApiError::unavailable("engine stopped")),
                }
            }
        }
    }

    /// Stops the decode loop (jobs in flight end without `Done`) and waits for the thread.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("engine thread panicked");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
