//! The replica proof through real proxies: three in-process proxies sharing their
//! limits through one real `redis-server` (started by the test; skipped with a message when it
//! is not installed and `CI` is unset) in front of one recording mock upstream, and the same
//! test bodies on one proxy with the in-process store; and the response cache's shared level,
//! an answer stored by one proxy served by the others. See docs/limits.md, "Tested".

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod cache;
mod limits;
mod outage;
mod round_trips;
mod support;
