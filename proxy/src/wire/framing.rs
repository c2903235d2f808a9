//! SSE framing of an upstream body (the WHATWG event-stream format), with a cap on the size of
//! one event and a line scan that never looks at a byte twice.
//!
//! `eventsource-stream` did this before, but it has no size cap and searches the whole buffered
//! line again for every chunk, so an upstream that sent one 400 MB line without a newline held a
//! request for over a minute of CPU. The format is small (four fields, three line endings), so it
//! is parsed here; events keep that crate's [`Event`] type, which the stream phase uses.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Event;

/// Splits a byte stream into events. Feed it chunks with [`Framer::feed`] and take the complete
/// events with [`Framer::next_event`].
#[derive(Debug)]
pub struct Framer {
    /// Bytes of the line being read (and, transiently, lines not yet consumed).
    buf: Vec<u8>,
    /// How far `buf` has been searched for a line end: bytes before it hold none.
    scanned: usize,
    /// A line just ended with `\r`; a `\n` at the start of the next chunk belongs to it.
    after_cr: bool,
    /// The stream has started (a leading byte-order mark is dropped only there).
    started: bool,
    /// The event being assembled.
    event: Event,
    /// Whether any `data` line was seen for it (an event with none is not dispatched).
    has_data: bool,
    /// Bytes held for the event being assembled (its fields so far).
    event_bytes: usize,
    /// Most bytes one event (its fields and its pending line) may take.
    max_event_bytes: usize,
    ready: VecDeque<Event>,
    /// Bytes searched for a line end so far, to prove no byte is searched twice.
    #[cfg(test)]
    examined: usize,
}

/// An event (or a line of one) passed the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an event exceeded the limit of {0} bytes (server.max_sse_event_bytes)")]
pub struct TooLarge(pub usize);

impl Framer {
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            after_cr: false,
            started: false,
            event: empty_event(),
            has_data: false,
            event_bytes: 0,
            max_event_bytes,
            ready: VecDeque::new(),
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Takes in one chunk of the body: complete events become available from
    /// [`Framer::next_event`]. Fails once the event being read is over the cap.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        let mut chunk = chunk;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        self.buf.extend_from_slice(chunk);
        if !self.started && self.buf.len() >= 3 {
            self.started = true;
            if self.buf.starts_with("\u{feff}".as_bytes()) {
                self.buf.drain(..3);
                // At most two bytes were scanned before, none of them a line end.
                self.scanned = 0;
            }
        }
        let mut line_start = 0;
        loop {
            let rest = &self.buf[self.scanned..];
            let found = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            #[cfg(test)]
            {
                self.examined += found.map_or(rest.len(), |offset| offset + 1);
            }
            let Some(offset) = found else { break };
            let end = self.scanned + offset;
            let mut next = end + 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = String::from_utf8_lossy(&self.buf[line_start..end]).into_owned();
            self.line(&line)?;
            line_start = next;
            self.scanned = next;
        }
        self.buf.drain(..line_start);
        self.scanned = self.buf.len();
        if self.event_bytes + self.buf.len() > self.max_event_bytes {
            return Err(TooLarge(self.max_event_bytes));
        }
        Ok(())
    }

    /// The next complete event, in order.
    pub fn next_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// Applies one line to the event being assembled; an empty line dispatches it.
    fn line(&mut self, line: &str) -> Result<(), TooLarge> {
        if line.is_empty() {
            let mut event = std::mem::replace(&mut self.event, empty_event());
            // The last event id persists across events, as the spec says.
            self.event.id.clone_from(&event.id);
            self.event_bytes = self.event.id.len();
            if std::mem::take(&mut self.has_data) {
                if event.data.ends_with('\n') {
                    event.data.pop();
                }
                if event.event.is_empty() {
                    event.event = "message".into();
                }
                self.ready.push_back(event);
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.event.data.push_str(value);
                self.event.data.push('\n');
                self.has_data = true;
                self.event_bytes += value.len() + 1;
            }
            "event" => {
                self.event_bytes =
                    self.event_bytes.saturating_sub(self.event.event.len()) + value.len();
                value.clone_into(&mut self.event.event);
            }
            "id" if !value.contains('\0') => {
                self.event_bytes =
                    self.event_bytes.saturating_sub(self.event.id.len()) + value.len();
                value.clone_into(&mut self.event.id);
            }
            "retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.event.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        if self.event_bytes > self.max_event_bytes {
            return Err(TooLarge(self.max_event_bytes));
        }
        Ok(())
    }
}

fn empty_event() -> Event {
    Event { event: String::new(), data: String::new(), id: String::new(), retry: None }
}

/// The events of a whole body given in `chunks`, for tests and fuzzing.
pub fn frame_all(
    chunks: impl IntoIterator<Item = Bytes>,
    max: usize,
) -> Result<Vec<Event>, TooLarge> {
    let mut framer = Framer::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        framer.feed(&chunk)?;
        out.extend(std::iter::from_fn(|| framer.next_event()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    fn split_everywhere(text: &str) -> Vec<Vec<Bytes>> {
        let bytes = text.as_bytes();
        (0..=bytes.len())
            .map(|at| {
                vec![Bytes::copy_from_slice(&bytes[..at]), Bytes::copy_from_slice(&bytes[at..])]
            })
            .collect()
    }

    #[test]
    fn every_line_ending_and_every_split_gives_the_same_events() {
        let text = "\u{feff}data: a\r\n\r\n: comment\rdata:b\ndata:  c\n\nevent: x\nid: 7\ndata: d\r\rdata\n\n";
        for chunks in split_everywhere(text) {
            let events = frame_all(chunks, 1024).unwrap();
            assert_eq!(data(&events), ["a", "b\n c", "d", ""]);
            assert_eq!(events[2].event, "x");
            assert_eq!(events[2].id, "7");
            assert_eq!(events[3].id, "7", "the last id carries over");
            assert_eq!(events[0].event, "message");
        }
    }

    #[test]
    fn byte_by_byte_feeding_works() {
        let text = "data: {\"x\":1}\n\ndata: [DONE]\n\n";
        let events = frame_all(text.bytes().map(|b| Bytes::copy_from_slice(&[b])), 64).unwrap();
        assert_eq!(data(&events), ["{\"x\":1}", "[DONE]"]);
    }

    #[test]
    fn an_event_or_a_line_over_the_cap_fails() {
        let long_line = vec![Bytes::from("data: "), Bytes::from(vec![b'x'; 100])];
        assert_eq!(frame_all(long_line, 64).unwrap_err(), TooLarge(64));
        let many_lines = (0..20).map(|_| Bytes::from("data: 0123456789\n"));
        assert_eq!(frame_all(many_lines, 64).unwrap_err(), TooLarge(64));
        let fine = (0..20).map(|_| Bytes::from("data: 0123456789\n\n"));
        assert_eq!(frame_all(fine, 64).unwrap().len(), 20, "the cap is per event");
    }

    #[test]
    fn a_long_line_fed_in_small_chunks_is_scanned_once() {
        let mut framer = Framer::new(1 << 20);
        framer.feed(b"data: ").unwrap();
        for _ in 0..10_000 {
            framer.feed(&[b'x'; 16]).unwrap();
        }
        framer.feed(b"\n\n").unwrap();
        assert_eq!(framer.next_event().unwrap().data.len(), 160_000);
        assert!(framer.examined <= 6 + 160_000 + 2, "examined {} bytes", framer.examined);
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        let events = frame_all([Bytes::from("event: ping\n\nretry: 5\n\n")], 64).unwrap();
        assert!(events.is_empty());
    }
}
