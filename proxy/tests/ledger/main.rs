//! The usage ledger against real stores: the shared limit tests over memory and Redis, Redis
//! outages, and `GET /admin/usage` on a running proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod support;

mod admin;
mod limits;
mod outage;
mod snapshot;
