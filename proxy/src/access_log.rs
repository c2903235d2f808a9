//! The access log: one JSON line per request, written by its own thread so that a slow disk or a
//! blocked stdout never slows a request. Lines wait in a bounded queue; when it is full a line is
//! dropped and counted (`switchyard_access_log_dropped_total`), never waited for.
//!
//! What a line holds is decided by [`crate::record`]: never prompt or answer text.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use prometheus_client::metrics::counter::Counter;

/// Lines that may wait for the writer at once.
const QUEUE_LINES: usize = 16 * 1024;

/// Where lines go (`[log] access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Appended to this file (created if missing).
    File(PathBuf),
}

impl Destination {
    /// `"stdout"` or `"-"` is standard output; anything else a file path.
    pub fn parse(value: &str) -> Self {
        match value {
            "stdout" | "-" => Self::Stdout,
            path => Self::File(PathBuf::from(path)),
        }
    }
}

/// The log's sending side. Dropping it writes out what is queued and stops the writer.
#[derive(Debug)]
pub struct AccessLog {
    /// `None` only while dropping.
    lines: Option<SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Lines dropped because the queue was full.
    pub dropped: Counter,
}

impl AccessLog {
    /// Opens `destination` (a file is opened here, so a bad path fails at start) and starts the
    /// writer thread.
    pub fn open(destination: &Destination) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = match destination {
            Destination::Stdout => Box::new(std::io::stdout()),
            Destination::File(path) => {
                Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        let (lines, queue) = sync_channel(QUEUE_LINES);
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(queue, out))?;
        Ok(Self { lines: Some(lines), writer: Some(writer), dropped: Counter::default() })
    }

    /// Queues one line (without its newline); drops it when the writer is behind.
    pub fn write(&self, line: String) {
        let Some(lines) = &self.lines else { return };
        match lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.lines = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: writes what is queued, flushing whenever the queue runs empty, until every
/// sender is gone.
fn write_lines(queue: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = queue.recv() {
        let mut next = Some(line);
        while let Some(line) = next {
            if writeln!(out, "{line}").is_err() {
                return;
            }
            next = queue.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let log = AccessLog::open(&Destination::File(path.clone())).unwrap();
        for i in 0..100 {
            log.write(format!("{{\"n\":{i}}}"));
        }
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<String> = (0..100).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_destination_is_stdout_or_a_path() {
        assert_eq!(Destination::parse("stdout"), Destination::Stdout);
        assert_eq!(Destination::parse("-"), Destination::Stdout);
        assert_eq!(Destination::parse("/var/log/x"), Destination::File("/var/log/x".into()));
    }
}
