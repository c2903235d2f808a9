//! The benchmarks' instruments. The `mock-upstream` process keeps no record of what it served:
//! its memory stays flat however many requests the proxy sends it (it once kept every request,
//! and grew to tens of GB in a long benchmark, which starved the machine the benchmark measured).
//! The CPU time a benchmark charges a process counts the time of all its threads.

use std::path::Path;

use switchyard_tests::client::post;
use switchyard_tests::procs::{read_listening, spawn_mock};
use switchyard_tests::wrk::cpu_ns;

#[tokio::test]
async fn the_benchmark_mock_forgets_what_it_served() {
    // Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
    let rss_kib = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS")
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_mock-upstream"));
    let mut mock = spawn_mock(exe.parent().expect("bin dir"), &[]).expect("mock-upstream");
    let addr = read_listening(&mut mock.0).expect("listening");
    let url = format!("http://{addr}/v1/chat/completions");
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
    let exe = Path::new(env!("CARGO_BIN_EXE_mock-upstream"));
    let mut mock = spawn_mock(exe.parent().expect("bin dir"), &[]).expect("mock-upstream");
    let addr = read_listening(&mut mock.0).expect("listening");
    let url = format!("http://{addr}/v1/chat/completions");
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
