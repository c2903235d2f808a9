//! The service's configuration: the command line flags, checked once before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How the inference service runs. Tests build it with [`Config::for_model`] instead of parsing flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "switchyard-inference", version, about)]
pub struct Config {
    /// GGUF model file to serve.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// Address to listen on for the OpenAI-compatible HTTP API.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Sequences decoded together in one llama_batch step (slots).
    #[arg(long, default_value_t = 4)]
    pub parallel: u32,

    /// KV cache size in tokens for all slots together; each slot gets ctx-size / parallel,
    /// as in llama-server.
    #[arg(long, default_value_t = 8192)]
    pub ctx_size: u32,

    /// Most tokens decoded in one step; a long prompt is fed in chunks of this size so that
    /// generating slots keep streaming.
    #[arg(long, default_value_t = 512)]
    pub batch_size: u32,

    /// CPU threads for llama.cpp.
    #[arg(long, default_value_t = default_threads())]
    pub threads: u32,

    /// Model layers to offload to the GPU (needs a GPU build, e.g. `--features cuda`).
    #[arg(long, default_value_t = 0)]
    pub n_gpu_layers: u32,

    /// Requests that may wait for a free slot; past this the answer is 429.
    #[arg(long, default_value_t = 64)]
    pub queue_size: u32,

    /// Model id reported by /v1/models and in responses; defaults to the file name.
    #[arg(long)]
    pub model_id: Option<String>,

    /// Most tokens generated for a request that sets no `max_tokens` (llama-server's
    /// `--n-predict`); 0: until the slot's context is full, as llama-server's -1. A small model
    /// can repeat itself to the end of its context, which takes minutes on a CPU.
    #[arg(long, default_value_t = 0)]
    pub n_predict: u32,

    /// OpenTelemetry traces (off unless `--otlp-endpoint` is set), as the proxy's `[telemetry]`.
    #[command(flatten)]
    pub telemetry: TelemetryFlags,
}

/// The proxy's `[telemetry]` section as flags: where spans go, under which service name, and the
/// share of new traces recorded.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryFlags {
    /// OTLP collector for traces: `http://host:4318` (OTLP/HTTP, protobuf; `/v1/traces` is
    /// added) or `grpc://host:4317` (OTLP/gRPC). Clear text only: this service has no TLS.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// `service.name` of the exported spans.
    #[arg(long, value_name = "NAME", default_value = "switchyard-inference")]
    pub service_name: String,

    /// Share of new traces recorded, 0-1; a caller's `traceparent` decides for its own trace.
    #[arg(long, value_name = "RATIO", default_value_t = 1.0)]
    pub sample_ratio: f64,
}

impl Default for TelemetryFlags {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "switchyard-inference".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

fn default_threads() -> u32 {
    std::thread::available_parallelism().map_or(4, |n| u32::try_from(n.get()).unwrap_or(4))
}

impl Config {
    /// A config for `model` with the defaults above, listening wherever the caller's listener is.
    pub fn for_model(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            parallel: 4,
            ctx_size: 8192,
            batch_size: 512,
            threads: default_threads(),
            n_gpu_layers: 0,
            queue_size: 64,
            model_id: None,
            n_predict: 0,
            telemetry: TelemetryFlags::default(),
        }
    }

    /// Every problem with the config at once, or nothing.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let mut problems = Vec::new();
        if !self.model.is_file() {
            problems.push(format!("--model {}: no such file", self.model.display()));
        }
        if self.parallel == 0 || self.parallel > 256 {
            problems.push(format!("--parallel {}: must be 1..=256", self.parallel));
        }
        if self.threads == 0 {
            problems.push("--threads 0: must be at least 1".to_owned());
        }
        if self.batch_size < 32 {
            problems.push(format!("--batch-size {}: must be at least 32", self.batch_size));
        }
        if self.parallel > 0 && self.ctx_size / self.parallel < 64 {
            problems.push(format!(
                "--ctx-size {} / --parallel {} leaves under 64 tokens per slot",
                self.ctx_size, self.parallel
            ));
        }
        if self.parallel > self.batch_size {
            problems.push(format!(
                "--parallel {} is over --batch-size {}: every slot needs a place in each step",
                self.parallel, self.batch_size
            ));
        }
        if self.queue_size == 0 {
            problems.push("--queue-size 0: must be at least 1".to_owned());
        }
        let ratio = self.telemetry.sample_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            problems.push(format!("--sample-ratio {ratio}: must be 0..=1"));
        }
        if let Some(url) = &self.telemetry.otlp_endpoint
            && !["http://", "grpc://"].iter().any(|scheme| url.starts_with(scheme))
        {
            problems.push(format!(
                "--otlp-endpoint {url}: must be http:// (OTLP/HTTP) or grpc:// (OTLP/gRPC); \
                 this service has no TLS"
            ));
        }
        if problems.is_empty() { Ok(()) } else { Err(crate::Error::Config(problems.join("; "))) }
    }

    /// The id clients see: `--model-id`, or the model file's stem.
    pub fn model_id(&self) -> String {
        self.model_id.clone().unwrap_or_else(|| {
            self.model
                .file_stem()
                .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
        })
    }
}
