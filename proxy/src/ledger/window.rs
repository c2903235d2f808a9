//! Window arithmetic shared by both stores: fixed minute windows and UTC days, numbered from the
//! Unix epoch, and the counters a store reports for one tenant at one moment.

use serde::Serialize;

/// Milliseconds in a rate window.
pub const MINUTE_MS: u64 = 60_000;
/// Milliseconds in a budget window (a UTC day; leap seconds do not exist in Unix time).
pub const DAY_MS: u64 = 86_400_000;

/// The minute window that holds `now_ms`.
pub fn minute(now_ms: u64) -> u64 {
    now_ms / MINUTE_MS
}

/// The UTC day that holds `now_ms`.
pub fn day(now_ms: u64) -> u64 {
    now_ms / DAY_MS
}

/// Milliseconds until the minute window of `now_ms` ends (1 at least: a window that ends now
/// still needs the next tick).
pub fn minute_reset_ms(now_ms: u64) -> u64 {
    MINUTE_MS - now_ms % MINUTE_MS
}

/// Milliseconds until the UTC day of `now_ms` ends.
pub fn day_reset_ms(now_ms: u64) -> u64 {
    DAY_MS - now_ms % DAY_MS
}

/// One tenant's counters in the current windows, as the store saw them at `now_ms` (its clock:
/// Redis's `TIME` for the shared store, so every replica agrees on where a window starts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Windows {
    /// The store's clock when it read the counters, Unix milliseconds.
    pub now_ms: u64,
    /// Requests admitted in this minute (cache hits included).
    pub requests: u64,
    /// Tokens reserved or used in this minute.
    pub tokens: u64,
    /// Cost reserved or spent this UTC day, in micro-USD.
    pub cost_micros: u64,
    /// Requests in flight now.
    pub concurrent: u64,
}

impl Windows {
    /// These counters as they stand at `now_ms` (later than when they were read) if nothing else
    /// happened: a minute or day that ended since starts again at 0; in-flight requests stay.
    /// An earlier `now_ms` changes nothing.
    pub fn rolled_to(self, now_ms: u64) -> Self {
        if now_ms <= self.now_ms {
            return self;
        }
        let mut out = Self { now_ms, ..self };
        if minute(now_ms) != minute(self.now_ms) {
            out.requests = 0;
            out.tokens = 0;
        }
        if day(now_ms) != day(self.now_ms) {
            out.cost_micros = 0;
        }
        out
    }
}

/// A duration the way OpenAI writes `x-ratelimit-reset-*`: `250ms`, `7s`, `1m30s`, `6h0m0s`.
pub fn format_reset(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    // Rounded up, so a client that waits this long finds the window reset.
    let secs = ms.div_ceil(1000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_numbered_from_the_epoch() {
        assert_eq!(minute(59_999), 0);
        assert_eq!(minute(60_000), 1);
        assert_eq!(day(DAY_MS - 1), 0);
        assert_eq!(day(DAY_MS), 1);
        assert_eq!(minute_reset_ms(60_000), 60_000);
        assert_eq!(minute_reset_ms(119_999), 1);
        assert_eq!(day_reset_ms(DAY_MS + 1), DAY_MS - 1);
    }

    #[test]
    fn rolled_windows_start_again_when_their_minute_or_day_ends() {
        let w = Windows { now_ms: 30_000, requests: 3, tokens: 40, cost_micros: 5, concurrent: 2 };
        assert_eq!(w.rolled_to(20_000), w, "an earlier clock changes nothing");
        assert_eq!(w.rolled_to(59_999), Windows { now_ms: 59_999, ..w });
        let next_minute = Windows { now_ms: 60_000, requests: 0, tokens: 0, ..w };
        assert_eq!(w.rolled_to(60_000), next_minute);
        let next_day = Windows { now_ms: DAY_MS, requests: 0, tokens: 0, cost_micros: 0, ..w };
        assert_eq!(w.rolled_to(DAY_MS), next_day);
    }

    #[test]
    fn resets_are_written_as_openai_writes_them() {
        assert_eq!(format_reset(250), "250ms");
        assert_eq!(format_reset(1000), "1s");
        assert_eq!(format_reset(1001), "2s");
        assert_eq!(format_reset(90_000), "1m30s");
        assert_eq!(format_reset(DAY_MS / 4), "6h0m0s");
    }
}
