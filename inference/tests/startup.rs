//! Start-up failures, without the model: a bad config is refused with every problem listed, and a
//! file that is not a GGUF makes `run` return a load error instead of serving forever.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchyard_inference::{Config, Error};
use tokio::net::TcpListener;

#[test]
fn config_lists_every_problem() {
    let mut config = Config::for_model("/nonexistent/model.gguf");
    config.parallel = 0;
    config.threads = 0;
    config.telemetry.sample_ratio = 1.5;
    config.telemetry.otlp_endpoint = Some("https://collector.example:4318".into());
    let Err(Error::Config(message)) = config.validate() else { panic!("config accepted") };
    for needle in ["--model", "--parallel 0", "--threads 0", "--sample-ratio 1.5", "no TLS"] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_model_fails_the_start() {
    let dir = std::env::temp_dir().join(format!("sy-inference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.gguf");
    std::fs::write(&path, b"this is not a gguf file").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = switchyard_inference::run(Config::for_model(&path), listener, std::future::pending());
    let result =
        tokio::time::timeout(Duration::from_secs(30), run).await.expect("run kept serving");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(result, Err(Error::Load(_))), "{result:?}");
}
