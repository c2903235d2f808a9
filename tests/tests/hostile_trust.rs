//! Hostile inputs against what the proxy trusts (issue 11): secrets that are set but blank, the
//! bearer scheme, tenants sharing a key, requests that must never share a cache entry, failed
//! answers that must never be cached, and what an upstream's answer may carry to the client.
//! One test per class; each failed on main before its fix.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::json;
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{self, Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::{chat_body, wasm};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn post(proxy: &Proxy, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::post(proxy.url(path)).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    client::read(
        client::send(request.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await,
    )
    .await
}

async fn admin_get(proxy: &Proxy, authorization: Option<&str>) -> Reply {
    let mut request = Request::get(proxy.admin_url("/admin/plugins"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    client::read(client::send(request.body(Full::new(Bytes::new())).unwrap()).await).await
}

#[tokio::test]
async fn a_blank_admin_token_keeps_the_admin_api_closed() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        .replace("[admin]\n", "[admin]\ntoken_env = \"ADMIN_TOKEN\"\n");
    // docker-compose turns an unset `${ADMIN_TOKEN}` into exactly this.
    for blank in ["", "  ", "\n"] {
        let proxy = Proxy::start_with_env(&cfg, env(&[("ADMIN_TOKEN", blank)])).await;
        for authorization in [None, Some("Bearer "), Some("Bearer"), Some("bearer  ")] {
            let reply = admin_get(&proxy, authorization).await;
            assert_eq!(reply.status, 401, "token {blank:?}, header {authorization:?}");
            assert!(reply.text().contains("disabled"), "{}", reply.text());
        }
        proxy.stop().await;
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_blank_tenant_keys_match_nothing() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"")
        + "\n[[tenant]]\nname = \"a\"\nkey_env = \"A_KEY\"\n\n[[tenant]]\nname = \"b\"\nkey_env = \"B_KEY\"\n";
    let proxy = Proxy::start_with_env(&cfg, env(&[("A_KEY", "sy-a"), ("B_KEY", "")])).await;
    let body = chat_body("m", "hi", false);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let value = format!("{scheme} sy-a");
        let reply = post(&proxy, "/v1/chat/completions", &body, &[("authorization", &value)]).await;
        assert_eq!(reply.status, 200, "{scheme}: {}", reply.text());
    }
    for value in ["Bearer ", "Bearer", "bearer   ", "Basic sy-a"] {
        let reply = post(&proxy, "/v1/chat/completions", &body, &[("authorization", value)]).await;
        assert_eq!(reply.status, 401, "{value:?} must not match tenant b's blank key");
    }
    proxy.stop().await;
}

#[tokio::test]
async fn two_tenants_with_one_key_do_not_start() {
    let cfg = config(&[("local", "http://127.0.0.1:9/v1", "")], "default = \"local\"")
        + "\n[[tenant]]\nname = \"a\"\nkey_env = \"A_KEY\"\n\n[[tenant]]\nname = \"b\"\nkey_env = \"B_KEY\"\n";
    let config = switchyard::config::parse(&cfg, "<test>", Path::new(".")).unwrap();
    let same = env(&[("A_KEY", "sy-shared"), ("B_KEY", " sy-shared\n")]);
    let error = switchyard::state::State::build(&config, &same).await.unwrap_err();
    assert!(error.to_string().contains("same API key"), "{error}");
    assert!(!error.to_string().contains("sy-shared"), "the key is never printed: {error}");
}

/// A proxy whose only plugin is cache-policy (every request it deems deterministic cached).
async fn cached_proxy(upstream: &MockUpstream) -> (Proxy, tempfile::TempDir) {
    let table = "[[plugin]]\nname = \"cache\"\nfile = \"cache_policy.wasm\"\nfailure = \"open\"\n";
    let (dir, section) =
        harness::plugins_section(&[("cache_policy.wasm", wasm::CACHE_POLICY)], table);
    let cfg = config(&[("local", &upstream.base_url(), "")], "default = \"local\"");
    (Proxy::start(&format!("{cfg}\n{section}")).await, dir)
}

#[tokio::test]
async fn different_token_ids_and_images_never_share_a_cache_entry() {
    let local = MockUpstream::start("local", Behavior::Normal).await;
    let (proxy, _dir) = cached_proxy(&local).await;
    let embed = |ids: &[u32]| json!({"model": "e", "input": [ids]}).to_string();
    let first = post(&proxy, "/v1/embeddings", &embed(&[1, 2, 3]), &[]).await;
    assert_eq!(first.header("x-switchyard-cache"), "miss", "{}", first.text());
    let again = post(&proxy, "/v1/embeddings", &embed(&[1, 2, 3]), &[]).await;
    assert_eq!(again.header("x-switchyard-cache"), "hit");
    let other = post(&proxy, "/v1/embeddings", &embed(&[1, 2, 4]), &[]).await;
    assert_eq!(other.header("x-switchyard-cache"), "miss", "other token ids, other answer");

    let look = |image: &str| {
        json!({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is in this picture?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{image}")}},
        ]}]})
        .to_string()
    };
    let cat = post(&proxy, "/v1/chat/completions", &look("Y2F0"), &[]).await;
    assert_eq!(cat.header("x-switchyard-cache"), "miss");
    let dog = post(&proxy, "/v1/chat/completions", &look("ZG9n"), &[]).await;
    assert_eq!(dog.header("x-switchyard-cache"), "miss", "same text, other image");
    let named = |name: &str| {
        json!({"model": "m", "temperature": 0,
            "messages": [{"role": "user", "name": name, "content": "who am I?"}]})
        .to_string()
    };
    assert_eq!(
        post(&proxy, "/v1/chat/completions", &named("ann"), &[]).await.header("x-switchyard-cache"),
        "miss"
    );
    assert_eq!(
        post(&proxy, "/v1/chat/completions", &named("bob"), &[]).await.header("x-switchyard-cache"),
        "miss"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn failed_answers_are_never_cached() {
    let local = MockUpstream::start("local", Behavior::OkWithErrorBody).await;
    let (proxy, _dir) = cached_proxy(&local).await;
    let body = |stream: bool| {
        json!({"model": "m", "temperature": 0, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
    };
    for _ in 0..2 {
        let reply = post(&proxy, "/v1/chat/completions", &body(false), &[]).await;
        assert_eq!(reply.header("x-switchyard-cache"), "miss", "a 200 error object is not stored");
    }
    assert_eq!(local.hits(), 2);

    local.set_behavior(Behavior::ErrorEventMidStream);
    for _ in 0..2 {
        let reply = post(&proxy, "/v1/chat/completions", &body(true), &[]).await;
        assert!(reply.text().contains("mock overloaded"), "{}", reply.text());
        assert_eq!(reply.header("x-switchyard-cache"), "miss", "a stream with an error event");
    }
    assert_eq!(local.hits(), 4);
    proxy.stop().await;
}

#[tokio::test]
async fn upstream_answers_reach_the_client_without_cookies_or_key_fragments() {
    let leaky = "Incorrect API key provided: sk-proj-****************************abcd.";
    let local = MockUpstream::start("local", Behavior::StatusSaying(401, leaky.into())).await;
    let cfg = config(&[("local", &local.base_url(), "")], "default = \"local\"");
    let proxy = Proxy::start(&cfg).await;
    let body = chat_body("m", "hi", false);

    let reply = post(&proxy, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(reply.status, 502, "the proxy's own key was refused: {}", reply.text());
    assert!(!reply.text().contains("abcd"), "no key fragment: {}", reply.text());
    assert!(reply.text().contains("credentials"), "{}", reply.text());

    local.set_behavior(Behavior::Status(400));
    let reply = post(&proxy, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(reply.status, 400, "the client's own mistake is relayed");
    assert_eq!(reply.json()["error"]["message"], "local says 400");
    for header in ["set-cookie", "openai-organization", "x-mock-header"] {
        assert_eq!(reply.header(header), "", "{header} stays behind");
    }
    assert_eq!(reply.header("content-type"), "application/json");
    proxy.stop().await;
}
