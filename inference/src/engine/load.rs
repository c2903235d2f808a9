//! llama.cpp start-up: the process-wide backend, the model (with load progress logged) and the
//! one context the engine thread decodes with.

use std::num::NonZeroU32;
use std::sync::OnceLock;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};

use crate::config::Config;

/// llama.cpp's backend may be initialised once per process, but tests start many servers in one
/// process, so it lives here for good.
pub fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Loads the GGUF, logging progress every 25%, and takes its chat template if it has one.
pub fn model(config: &Config) -> Result<(LlamaModel, Option<LlamaChatTemplate>), String> {
    let backend = backend()?;
    let mut logged = -1;
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(config.n_gpu_layers)
        .with_progress_callback(move |p| {
            let quarter = (p * 4.0) as i32;
            if quarter > logged {
                logged = quarter;
                tracing::info!(progress = format!("{}%", quarter * 25), "loading model");
            }
            true
        });
    let model = LlamaModel::load_from_file(backend, &config.model, &params)
        .map_err(|e| format!("{}: {e}", config.model.display()))?;
    let template = match model.chat_template(None) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "model has no chat template; /v1/chat/completions is off");
            None
        }
    };
    Ok((model, template))
}

/// The decode context: `parallel` separate KV streams of `ctx_size / parallel` cells each, so that
/// one slot can never run another out of cache.
pub fn context<'m>(model: &'m LlamaModel, config: &Config) -> Result<LlamaContext<'m>, String> {
    let backend = backend()?;
    let threads = i32::try_from(config.threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.ctx_size))
        .with_n_batch(config.batch_size)
        .with_n_ubatch(config.batch_size)
        .with_n_seq_max(config.parallel)
        .with_kv_unified(false)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    model.new_context(backend, params).map_err(|e| format!("creating the context: {e}"))
}
