//! Virtual API keys: with tenants configured, requests need a known key, and that key never
//! reaches an upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use switchyard_tests::chat_body;
use switchyard_tests::client;
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};

async fn call(proxy: &Proxy, key: Option<&str>) -> client::Reply {
    let mut request = Request::post(proxy.url("/v1/chat/completions"));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request.body(Full::new(Bytes::from(chat_body("m", "hi", false)))).unwrap();
    client::read(client::send(request).await).await
}

#[tokio::test]
async fn tenants_need_their_key() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        + "\n[[tenant]]\nname = \"team-a\"\nkey_env = \"TEAM_A_KEY\"\n\n[[tenant]]\nname = \"team-b\"\nkey_env = \"UNSET_KEY\"\n";
    let env = HashMap::from([("TEAM_A_KEY".to_string(), "sy-team-a".to_string())]);
    let proxy = Proxy::start_with_env(&cfg, env).await;

    for key in [None, Some("wrong"), Some("")] {
        let reply = call(&proxy, key).await;
        assert_eq!(reply.status, 401, "{key:?}");
        assert_eq!(reply.json()["error"]["type"], "authentication_error");
        assert_eq!(reply.json()["error"]["code"], "invalid_api_key");
    }
    assert_eq!(local.hits(), 0);

    let reply = call(&proxy, Some("sy-team-a")).await;
    assert_eq!(reply.status, 200);
    let received = local.received();
    assert!(received[0].headers.get("authorization").is_none(), "the virtual key stays here");
    proxy.stop().await;
}

#[tokio::test]
async fn without_tenants_the_proxy_is_open() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let proxy =
        Proxy::start(&config(&[("local", &local.base_url(), "")], "default = \"local\"")).await;
    assert_eq!(call(&proxy, None).await.status, 200);
    assert_eq!(call(&proxy, Some("anything")).await.status, 200);
    proxy.stop().await;
}
