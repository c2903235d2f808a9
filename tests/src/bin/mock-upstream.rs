//! The mock OpenAI upstream as a process, for benchmarks and manual runs:
//! `mock-upstream [ADDR] [--slow-ms N]` (default 127.0.0.1:0); prints `listening ADDR` once
//! ready. With `--slow-ms N`, a stream whose last user message says "slowly" waits N ms before
//! each event (as `Behavior::SlowIfAsked`): long streams for capacity benchmarks.

use std::time::Duration;

use anyhow::Context;
use switchyard_tests::mock::{Behavior, MockUpstream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let slow_ms = match args.iter().position(|a| a == "--slow-ms") {
        Some(i) => Some(args.get(i + 1).context("--slow-ms takes a number")?.parse::<u64>()?),
        None => None,
    };
    let addr = args.first().filter(|a| !a.starts_with("--")).cloned();
    let addr = addr.unwrap_or_else(|| "127.0.0.1:0".into());
    // Every stream of a capacity benchmark holds a connection here.
    switchyard::connection::raise_fd_limit();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let behavior = match slow_ms {
        Some(ms) => Behavior::SlowIfAsked(Duration::from_millis(ms)),
        None => Behavior::Normal,
    };
    let mock = MockUpstream::serve(listener, "mock", behavior);
    // Nobody asks this process what it received: keeping every request would grow it by each
    // request's size, to tens of GB in a benchmark.
    mock.forget_requests();
    println!("listening {}", mock.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
