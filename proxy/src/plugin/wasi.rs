//! WASI 0.2 for the components whose toolchain imports it (componentize-py does; Rust and
//! componentize-js plugins do not): every capability denied. No preopened directory, no
//! environment variable, no argument, stdin closed, no socket (TCP and UDP off, every address
//! refused, no name lookup). Clocks and randomness work: interpreters need them to start. What a
//! plugin writes to stdout or stderr goes to the proxy's log under its name, one line at a time,
//! cut at [`wasi::MAX_LINE_BYTES`] and at [`wasi::LINES_PER_SECOND`] per plugin. The context is made
//! on the first WASI call of a store, so plugins that never make one never pay for it.
//! docs/plugins.md ("WASI") lists each interface and what it gives.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::limits::{monotonic_ns, wasi};

/// One store's WASI: the deny-all context and the table of the resources (streams, pollables) it
/// handed out.
pub(crate) struct WasiState {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
}

impl WasiState {
    /// Everything denied, set explicitly rather than trusting the builder's defaults (which have
    /// changed between wasmtime versions).
    pub(crate) fn deny_all(plugin: &Arc<str>, output: &Arc<LineBudget>) -> Self {
        let mut builder = WasiCtxBuilder::new();
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .stdout(LogOutput::new(plugin, "stdout", output))
            .stderr(LogOutput::new(plugin, "stderr", output))
            .max_random_size(wasi::MAX_RANDOM_BYTES);
        // Nothing else: no `preopened_dir`, `env`, `args` or `stdin` call, so the guest sees no
        // directory, an empty environment, no arguments and a closed stdin.
        let mut table = ResourceTable::new();
        table.set_max_capacity(wasi::MAX_RESOURCES);
        Self { ctx: builder.build(), table }
    }
}

/// How many stdout/stderr lines one plugin may still log: a token bucket shared by all its
/// instances, so a plugin that prints in a loop costs the log a bounded rate, whatever the
/// traffic.
#[derive(Debug)]
pub(crate) struct LineBudget {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_ns: u64,
    /// Lines dropped since the last one logged: reported with the next line that gets through.
    dropped: u64,
}

impl Default for LineBudget {
    fn default() -> Self {
        let full = f64::from(wasi::LINE_BURST);
        Self { state: Mutex::new(Bucket { tokens: full, refilled_ns: monotonic_ns(), dropped: 0 }) }
    }
}

impl LineBudget {
    /// Takes one line's token; `Some(lines dropped before it)` when the line may be logged.
    fn take(&self, now_ns: u64) -> Option<u64> {
        let Ok(mut b) = self.state.lock() else { return None };
        let elapsed = now_ns.saturating_sub(b.refilled_ns) as f64 / 1e9;
        b.tokens = (b.tokens + elapsed * f64::from(wasi::LINES_PER_SECOND))
            .min(f64::from(wasi::LINE_BURST));
        b.refilled_ns = now_ns;
        if b.tokens < 1.0 {
            b.dropped += 1;
            return None;
        }
        b.tokens -= 1.0;
        Some(std::mem::take(&mut b.dropped))
    }
}

/// stdout or stderr of a plugin's instances: each stream WASI asks for writes to the log.
struct LogOutput {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<LineBudget>,
}

impl LogOutput {
    fn new(plugin: &Arc<str>, stream: &'static str, budget: &Arc<LineBudget>) -> Self {
        Self { plugin: Arc::clone(plugin), stream, budget: Arc::clone(budget) }
    }
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }
}

impl LogOutput {
    fn writer(&self) -> LogWriter {
        LogWriter {
            plugin: Arc::clone(&self.plugin),
            stream: self.stream,
            budget: Arc::clone(&self.budget),
            line: Vec::new(),
            cut: false,
        }
    }
}

/// Splits what the guest writes into lines and logs each (within the budget). Never blocks and
/// never fails: output past the caps is dropped, the guest is not told.
struct LogWriter {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<LineBudget>,
    /// The line being written, at most [`wasi::MAX_LINE_BYTES`].
    line: Vec<u8>,
    /// The current line was longer than the cap.
    cut: bool,
}

impl LogWriter {
    fn push(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.append(&rest[..pos]);
            self.emit();
            rest = &rest[pos + 1..];
        }
        self.append(rest);
    }

    fn append(&mut self, part: &[u8]) {
        let room = wasi::MAX_LINE_BYTES.saturating_sub(self.line.len());
        self.cut |= part.len() > room;
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn emit(&mut self) {
        let line = std::mem::take(&mut self.line);
        let cut = std::mem::take(&mut self.cut);
        let Some(dropped) = self.budget.take(monotonic_ns()) else { return };
        let text = String::from_utf8_lossy(&line);
        let (plugin, stream) = (&*self.plugin, self.stream);
        tracing::info!(plugin, stream, cut, dropped_before = dropped, "{text}");
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}

impl OutputStream for LogWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(wasi::MAX_WRITE_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LogWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(budget: &Arc<LineBudget>) -> LogWriter {
        LogOutput::new(&Arc::from("p"), "stdout", budget).writer()
    }

    #[test]
    fn a_long_line_is_cut_at_the_cap_and_lines_split_on_newlines() {
        let budget = Arc::new(LineBudget::default());
        let mut w = writer(&budget);
        w.push(&vec![b'x'; wasi::MAX_LINE_BYTES + 10]);
        assert_eq!(w.line.len(), wasi::MAX_LINE_BYTES);
        assert!(w.cut);
        w.push(b"\nab");
        assert_eq!(w.line, b"ab");
        assert!(!w.cut, "the next line starts uncut");
    }

    #[test]
    fn the_line_budget_allows_a_burst_then_the_rate() {
        let budget = LineBudget::default();
        let t0 = budget.state.lock().map(|b| b.refilled_ns).unwrap_or(0);
        let burst = (0..wasi::LINE_BURST * 2).filter(|_| budget.take(t0).is_some()).count();
        assert_eq!(burst, wasi::LINE_BURST as usize, "a burst, then nothing at the same instant");
        // One second later: the rate's worth of lines, and the first reports what was dropped.
        let later = t0 + 1_000_000_000;
        assert_eq!(budget.take(later), Some(u64::from(wasi::LINE_BURST)));
        let more = (0..wasi::LINES_PER_SECOND * 2).filter(|_| budget.take(later).is_some()).count();
        assert_eq!(more + 1, wasi::LINES_PER_SECOND as usize);
    }
}
