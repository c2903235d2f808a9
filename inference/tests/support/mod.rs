//! What the model tests share: the service started in-process on 127.0.0.1:0 with the real model
//! (`SWITCHYARD_MODEL`), one at a time, and request helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test helpers fail loudly

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_inference::Config;
use switchyard_inference::client::Client;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, MutexGuard, oneshot};

/// Model tests share 2 cores: one server at a time keeps timings and metrics meaningful.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

pub struct Server {
    pub addr: SocketAddr,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), switchyard_inference::Error>>,
    _turn: MutexGuard<'static, ()>,
}

impl Server {
    pub async fn start(tune: impl FnOnce(&mut Config)) -> Server {
        let turn = ONE_AT_A_TIME.lock().await;
        let model = std::env::var("SWITCHYARD_MODEL")
            .expect("SWITCHYARD_MODEL must name the GGUF (scripts/test-inference.sh sets it)");
        let mut config = Config::for_model(model);
        config.threads = 2;
        tune(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchyard_inference::run(config, listener, async {
            let _ = stopped.await;
        }));
        let client = Client::new(addr);
        client.wait_ready(Duration::from_secs(60)).await.unwrap();
        Server { addr, client, stop: Some(stop), task, _turn: turn }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        task.await.unwrap().unwrap();
    }
}

pub fn chat(user: &str, max_tokens: u32) -> Value {
    json!({
        "model": "smollm2",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user},
        ],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

pub async fn answer(client: &Client, body: &Value) -> Value {
    let reply = client.post("/v1/chat/completions", body).await.unwrap();
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json().unwrap()
}

pub fn text(answer: &Value) -> &str {
    answer["choices"][0]["message"]["content"].as_str().unwrap()
}
