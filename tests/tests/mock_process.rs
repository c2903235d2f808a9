//! The benchmarks' instruments. The `mock-upstream` process keeps no record of what it served:
//! its memory stays flat however many requests the proxy sends it (it once kept every request,
//! and grew to tens of GB in a long benchmark, which starved the machine the benchmark measured).
//! The CPU time a benchmark charges a process counts the time of all its threads.

use std::path::Path;

use anyhow::Context;

use switchyard_tests::client::post;
use switchyard_tests::procs::{Guard, cpu_ns, read_listening, rss_kib, spawn_mock};

/// The `mock-upstream` process, and its chat completions URL.
fn mock() -> anyhow::Result<(Guard, String)> {
    let exe = Path::new(env!("CARGO_BIN_EXE_mock-upstream"));
    let mut mock = spawn_mock(exe.parent().context("bin dir")?, &[])?;
    let addr = read_listening(&mut mock.0)?;
    Ok((mock, format!("http://{addr}/v1/chat/completions")))
}

#[tokio::test]
async fn the_benchmark_mock_forgets_what_it_served() {
    let rss_kib = |pid| rss_kib(pid).expect("VmRSS");
    let (mock, url) = mock().expect("mock-upstream");
    // 64 KiB of prompt per request: 400 requests are 25 MiB, which a record of them would keep.
    let text = "x".repeat(64 << 10);
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]})
        .to_string();
    for _ in 0..40 {
        assert_eq!(post(&url, &body).await.status, 200);
    }
    let warm = rss_kib(mock.0.id());
    for _ in 0..400 {
        assert_eq!(post(&url, &body).await.status, 200);
    }
    let grown = rss_kib(mock.0.id()).saturating_sub(warm);
    assert!(grown < 8 << 10, "mock-upstream grew by {grown} KiB over 400 requests of 64 KiB");
}

#[tokio::test]
async fn a_process_is_charged_the_cpu_time_its_threads_spent_serving() {
    let (mock, url) = mock().expect("mock-upstream");
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        .to_string();
    let pid = mock.0.id();
    let before = cpu_ns(pid).expect("the mock's CPU time");
    for _ in 0..200 {
        assert_eq!(post(&url, &body).await.status, 200);
    }
    let after = cpu_ns(pid).expect("the mock's CPU time");
    // The mock's threads, not the test's: 200 answers take well over 5 µs each.
    assert!(after > before + 1_000_000, "charged {} ns for 200 requests", after - before);
    drop(mock);
    assert_eq!(cpu_ns(pid), None, "a process that has exited has no CPU time to charge");
}
