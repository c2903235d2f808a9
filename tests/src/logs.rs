//! What an in-process proxy logs, kept in memory: the proxy's own log subscriber
//! ([`switchyard::logs::init`], at `info`) installed once per test binary with a writer into a
//! buffer the test reads.

use std::sync::{Mutex, OnceLock};

use switchyard::config::LogFormat;

/// The test binary's log so far. The first call installs the subscriber in `format`; later calls
/// return the same buffer whatever they ask for (one subscriber per process).
pub fn captured(format: LogFormat) -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        let filter = tracing_subscriber::EnvFilter::new("info");
        switchyard::logs::init(format, filter, move || Writer(log), false)
            .expect("one log subscriber");
        log
    })
}

/// The captured log as text.
pub fn text(log: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&log.lock().unwrap()).into_owned()
}

struct Writer(&'static Mutex<Vec<u8>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
