//! The mock OpenAI upstream as a process, for benchmarks and manual runs:
//! `mock-upstream [ADDR]` (default 127.0.0.1:0); prints `listening ADDR` once ready.

use switchyard_tests::mock::{Behavior, MockUpstream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let mock = MockUpstream::serve(listener, "mock", Behavior::Normal);
    println!("listening {}", mock.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
