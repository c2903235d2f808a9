//! The proxy's own log: `tracing` output as text or as JSON lines, filtered by `SWITCHYARD_LOG`
//! (`info` when unset, for `serve`). JSON lines carry the fields of the `request` span a line was
//! written in (`request_id`, `trace_id`, `span_id`: the request's server span), for log–trace
//! correlation.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// The filter from `SWITCHYARD_LOG`, else `default` (`info` for `serve`).
pub fn filter_from_env(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| default.into())
}

/// Installs the process's log subscriber, writing `format` lines through `writer` (stderr in
/// `serve`), with terminal colours in text lines when `ansi`; an error when one is installed
/// already.
pub fn init<W>(format: LogFormat, filter: EnvFilter, writer: W, ansi: bool) -> Result<(), String>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = match format {
        LogFormat::Json => logs.json().with_current_span(true).try_init(),
        LogFormat::Text => logs.try_init(),
    };
    installed.map_err(|e| e.to_string())
}
