//! End-to-end tests against the real model (SmolLM2-135M-Instruct): the service runs in-process on
//! 127.0.0.1:0. They need the GGUF, whose path comes from `SWITCHYARD_MODEL`
//! (scripts/test-inference.sh sets it), so they are ignored by plain `cargo test`.

// Helpers here are test code too: a failed step should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, answer, chat, text};
use switchyard_inference::client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn greedy_is_deterministic_and_reports_usage() {
    let server = Server::start(|_| {}).await;
    let body = chat("What is the capital of France?", 48);
    let first = answer(&server.client, &body).await;
    let second = answer(&server.client, &body).await;
    assert!(!text(&first).is_empty());
    assert_eq!(text(&first), text(&second));
    assert!(text(&first).contains("Paris"), "{}", text(&first));
    assert_eq!(first["object"], "chat.completion");
    let usage = &first["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 10);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert!(matches!(first["choices"][0]["finish_reason"].as_str(), Some("stop" | "length")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn streamed_text_equals_plain_text() {
    let server = Server::start(|_| {}).await;
    let mut body = chat("Write a haiku about trains.", 40);
    let plain = answer(&server.client, &body).await;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let streamed = server.client.stream("/v1/chat/completions", &body).await.unwrap();
    assert!(streamed.done, "no [DONE]");
    assert_eq!(streamed.text, text(&plain));
    assert_eq!(streamed.finish_reason.as_deref(), plain["choices"][0]["finish_reason"].as_str());
    assert_eq!(streamed.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = streamed.usage.expect("usage chunk");
    assert_eq!(usage["completion_tokens"], plain["usage"]["completion_tokens"]);
    let last = streamed.chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "usage chunk has no choices");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn completions_limits_and_stop_strings() {
    let server = Server::start(|_| {}).await;
    let body = json!({"prompt": "One, two, three, four,", "max_tokens": 5, "temperature": 0});
    let reply = server.client.post("/v1/completions", &body).await.unwrap();
    assert_eq!(reply.status, 200);
    let v = reply.json().unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let full = v["choices"][0]["text"].as_str().unwrap().to_owned();
    // Stopping at the first comma gives the text before it, and finish_reason "stop".
    let body = json!({"prompt": "One, two, three, four,", "max_tokens": 5, "temperature": 0, "stop": [","]});
    let v = server.client.post("/v1/completions", &body).await.unwrap().json().unwrap();
    let stopped = v["choices"][0]["text"].as_str().unwrap();
    assert!(full.contains(','), "{full:?}");
    assert_eq!(stopped, full.split(',').next().unwrap());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn eight_concurrent_requests_match_their_solo_answers() {
    let server = Server::start(|c| {
        c.parallel = 8;
        c.ctx_size = 8192;
    })
    .await;
    let questions = [
        "What is the capital of France?",
        "Name three colors.",
        "What is 2 + 2?",
        "Write one sentence about the sea.",
        "What do bees make?",
        "Say hello in Spanish.",
        "What is the opposite of hot?",
        "Name a planet.",
    ];
    let bodies: Vec<Value> = questions.iter().map(|q| chat(q, 32)).collect();
    let mut solo = Vec::new();
    for body in &bodies {
        solo.push(text(&answer(&server.client, body).await).to_owned());
    }
    let tasks: Vec<_> = bodies
        .iter()
        .cloned()
        .map(|body| {
            let client = server.client.clone();
            tokio::spawn(async move { answer(&client, &body).await })
        })
        .collect();
    let mut mismatches = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let together = task.await.unwrap();
        if text(&together) != solo[i] {
            mismatches.push((i, solo[i].clone(), text(&together).to_owned()));
        }
    }
    assert!(mismatches.is_empty(), "batched answers differ from solo ones: {mismatches:#?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn disconnect_mid_stream_frees_the_slot() {
    let server = Server::start(|c| c.parallel = 2).await;
    let mut body = chat("Tell me a very long story about a dragon.", 1000);
    body["stream"] = json!(true);
    let (status, mut reader) =
        server.client.open_stream("/v1/chat/completions", &body).await.unwrap();
    assert_eq!(status, 200);
    for _ in 0..4 {
        reader.next_data().await.unwrap().unwrap();
    }
    assert_eq!(server.client.metric("switchyard_inference_slots_busy").await.unwrap(), 1.0);
    drop(reader);
    let mut freed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if server.client.metric("switchyard_inference_slots_busy").await.unwrap() == 0.0 {
            freed = true;
            break;
        }
    }
    assert!(freed, "slot still busy 2 s after the client left");
    assert_eq!(server.client.metric("switchyard_inference_cancelled_total").await.unwrap(), 1.0);

    // The same for a plain (non-streamed) request whose client gives up.
    let plain = {
        let (client, body) =
            (server.client.clone(), chat("Tell me a very long story about a dragon.", 1000));
        tokio::spawn(async move { client.post("/v1/chat/completions", &body).await })
    };
    wait_for_metric(&server.client, "switchyard_inference_slots_busy", 1.0).await;
    plain.abort();
    wait_for_metric(&server.client, "switchyard_inference_slots_busy", 0.0).await;
    assert_eq!(server.client.metric("switchyard_inference_cancelled_total").await.unwrap(), 2.0);
    // The server still answers.
    answer(&server.client, &chat("Hi", 4)).await;
    server.stop().await;
}

/// Polls /metrics until `name` reads `value`, for at most 10 s.
async fn wait_for_metric(client: &Client, name: &str, value: f64) {
    for _ in 0..200 {
        if client.metric(name).await.unwrap() == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn prefix_cache_hits_on_a_repeated_system_prompt() {
    let server = Server::start(|c| c.parallel = 2).await;
    let system = "You are a meticulous assistant for a railway company. ".repeat(30);
    let ask = |q: &str| {
        json!({
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": q}],
            "temperature": 0, "max_tokens": 8,
        })
    };
    let first = answer(&server.client, &ask("When does the first train leave?")).await;
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let second = answer(&server.client, &ask("How much is a ticket?")).await;
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached >= 300, "only {cached} prompt tokens came from the cache");
    assert!(
        server.client.metric("switchyard_inference_prefix_cache_hits_total").await.unwrap() >= 1.0
    );
    // The reused KV gives the same answer as a cold run would.
    let replay = answer(&server.client, &ask("When does the first train leave?")).await;
    assert_eq!(text(&replay), text(&first));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn bad_requests_get_400_naming_the_problem() {
    let server = Server::start(|c| {
        c.parallel = 2;
        c.ctx_size = 1024;
    })
    .await;
    let long = "word ".repeat(2000);
    let reply = server.client.post("/v1/chat/completions", &chat(&long, 8)).await.unwrap();
    assert_eq!(reply.status, 400);
    let err = reply.json().unwrap();
    assert_eq!(err["error"]["code"], "context_length_exceeded");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("512 tokens"), "{message}");
    assert!(message.contains("--ctx-size 1024 / --parallel 2"), "{message}");

    let mut body = chat("Hi", 4);
    body["logprobs"] = json!(true);
    let reply = server.client.post("/v1/chat/completions", &body).await.unwrap();
    assert_eq!(reply.status, 400);
    let err = reply.json().unwrap();
    assert_eq!(err["error"]["param"], "logprobs");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("logprobs"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn full_queue_gets_429_with_retry_after() {
    let server = Server::start(|c| {
        c.parallel = 1;
        c.queue_size = 1;
    })
    .await;
    let mut body = chat("Tell me a very long story about a dragon.", 1000);
    body["stream"] = json!(true);
    let (_, mut running) = server.client.open_stream("/v1/chat/completions", &body).await.unwrap();
    running.next_data().await.unwrap().unwrap();
    running.next_data().await.unwrap().unwrap();
    let (status, queued) = server.client.open_stream("/v1/chat/completions", &body).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.client.metric("switchyard_inference_queue_depth").await.unwrap(), 1.0);
    let reply = server.client.post("/v1/chat/completions", &chat("Hi", 4)).await.unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(reply.json().unwrap()["error"]["code"], "queue_full");
    drop((running, queued));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the model; run by make test"]
async fn models_health_and_metrics() {
    let server = Server::start(|_| {}).await;
    let models = server.client.get("/v1/models").await.unwrap().json().unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "SmolLM2-135M-Instruct.Q4_1");
    let health = server.client.get("/healthz").await.unwrap().json().unwrap();
    assert_eq!(health["status"], "ready");
    answer(&server.client, &chat("Hi", 4)).await;
    let metrics =
        String::from_utf8(server.client.get("/metrics").await.unwrap().body.to_vec()).unwrap();
    for name in [
        "switchyard_inference_generation_tokens_per_second",
        "switchyard_inference_queue_depth",
        "switchyard_inference_slots_busy",
        "switchyard_inference_prefix_cache_hits_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        server.client.metric("switchyard_inference_generated_tokens_total").await.unwrap() >= 1.0
    );
    let _ = server.addr;
    server.stop().await;
}
