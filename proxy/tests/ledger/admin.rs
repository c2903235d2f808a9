//! `GET /admin/usage` on a running proxy: behind the admin token, every tenant with its limits,
//! current windows, what is left, and totals.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use switchyard::ledger::{Ask, Usage};
use switchyard::state::State;
use switchyard::{Listeners, serve};
use tokio::net::TcpListener;

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
token_env = "ADMIN_TOKEN"
[[upstream]]
name = "hosted"
base_url = "http://127.0.0.1:9/v1"
[routing]
default = "hosted"
[[tenant]]
name = "acme"
key_env = "ACME_KEY"
requests_per_minute = 60
tokens_per_minute = 10000
budget_usd_per_day = 2.5
[[tenant]]
name = "open"
key_env = "OPEN_KEY"
[[price]]
upstream = "hosted"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 4.0
"#;

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut request = http::Request::get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client.request(request.body(Empty::new()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn admin_usage_lists_every_tenant_behind_the_token() {
    let config = switchyard::config::parse(CONFIG, "<test>", Path::new(".")).unwrap();
    let env: HashMap<String, String> =
        [("ADMIN_TOKEN", "t0k"), ("ACME_KEY", "k1"), ("OPEN_KEY", "k2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let state = Arc::new(State::build(&config, &env).await.unwrap());
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/admin/usage", admin.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(config, Arc::clone(&state), Listeners { api, admin }, async {
        let _ = stopped.await;
    }));

    assert_eq!(get(&url, None).await.0, 401);
    assert_eq!(get(&url, Some("wrong")).await.0, 401);

    let ask = Ask { cache_hit: false, tokens: 1_500, cost_micros: 10 };
    let held = state.ledger.admit("acme", ask).await.unwrap();
    let settled = state.ledger.admit("acme", ask).await.unwrap();
    let usage = Usage { prompt_tokens: 100, completion_tokens: 250, cached_prompt_tokens: 20 };
    let usd = settled.reservation.settle("hosted", Some("gpt"), &usage).await;
    assert!((usd - (100.0 * 1.0 + 250.0 * 4.0) / 1e6).abs() < 1e-12);

    let (status, body) = get(&url, Some("t0k")).await;
    assert_eq!(status, 200, "{body}");
    let tenants = body["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2);
    let acme = &tenants[0];
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["limits"]["requests_per_minute"], 60);
    assert_eq!(acme["limits"]["budget_usd_per_day"], 2.5);
    assert_eq!(acme["limits"]["max_concurrent"], Value::Null);
    assert_eq!(acme["window"]["requests_this_minute"], 2);
    assert_eq!(acme["window"]["tokens_this_minute"], 1_500 + 350);
    assert_eq!(acme["window"]["in_flight"], 1);
    assert_eq!(acme["remaining"]["requests"], 58);
    assert_eq!(acme["remaining"]["tokens"], 10_000 - 1_850);
    let totals = &acme["totals_since_start"];
    assert_eq!(
        (totals["requests"].as_u64(), totals["completion_tokens"].as_u64()),
        (Some(2), Some(250))
    );
    assert_eq!(totals["cached_prompt_tokens"], 20);
    assert_eq!(totals["cost_usd"], 0.0011);
    assert_eq!(tenants[1]["tenant"], "open");
    assert_eq!(tenants[1]["remaining"]["requests"], Value::Null);

    // The same numbers in /metrics.
    let metrics_url = url.replace("/admin/usage", "/metrics");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(metrics_url.parse().unwrap()).await.unwrap();
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec())
        .unwrap();
    let labels = "tenant=\"acme\",upstream=\"hosted\",model=\"gpt\"";
    assert!(
        text.contains(&format!("switchyard_tokens_total{{{labels},kind=\"completion\"}} 250")),
        "{text}"
    );
    assert!(text.contains(&format!("switchyard_cost_usd_total{{{labels}}} 0.0011")), "{text}");

    held.reservation.release().await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_redis_store_needs_its_url_and_never_repeats_it() {
    let text = format!("{CONFIG}\n[state]\nbackend = \"redis\"\nurl_env = \"REDIS_URL\"\n");
    let config = switchyard::config::parse(&text, "<test>", Path::new(".")).unwrap();
    for url in [None, Some("  "), Some("http://user:hunter2@cache:6379")] {
        let env: HashMap<String, String> =
            url.map(|u| ("REDIS_URL".to_string(), u.to_string())).into_iter().collect();
        let err = State::build(&config, &env).await.unwrap_err().to_string();
        assert!(err.starts_with("state.url_env: "), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    // A well-formed URL is enough to start: Redis is connected on first use, so a proxy starts
    // while Redis is down (and admission follows on_unavailable).
    let env: HashMap<String, String> =
        [("REDIS_URL".to_string(), "redis://127.0.0.1:9".to_string())].into_iter().collect();
    let state = State::build(&config, &env).await.unwrap();
    let refusal = state
        .ledger
        .admit("acme", Ask { cache_hit: false, tokens: 1, cost_micros: 0 })
        .await
        .unwrap_err();
    assert_eq!(refusal.code(), "ledger_unavailable");
}
