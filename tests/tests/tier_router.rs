//! The tier-router plugin's routing end to end, one test per rule: aliases (fixed and `auto`),
//! each prompt feature, tenant, header hint, images endpoint, fallbacks, residency tags, and
//! models that are not aliases passing through to the default route. Mock upstreams record what
//! they received; `x-switchyard-upstream` says who answered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod tier_router_support;

use std::collections::HashMap;

use serde_json::json;
use switchyard_tests::mock::Behavior;
use tier_router_support::{Extra, answered_by, model_sent, start};

#[tokio::test]
async fn fixed_aliases_go_to_their_tier_with_its_model() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    answered_by(&s.chat("fast", "hi", false).await, "local");
    assert_eq!(model_sent(&s.local), "smollm2");
    answered_by(&s.chat("best", "hi", false).await, "hosted");
    assert_eq!(model_sent(&s.hosted), "gpt-4o-mini");
    s.stop().await;
}

#[tokio::test]
async fn a_model_that_is_not_an_alias_passes_through_untouched() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    answered_by(&s.chat("gpt-4o", "prove it step by step", false).await, "default");
    assert_eq!(model_sent(&s.default), "gpt-4o");
    assert_eq!(s.hits(), (0, 0, 0, 1));
    s.stop().await;
}

#[tokio::test]
async fn auto_sends_an_easy_prompt_to_the_easy_tier() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    answered_by(&s.chat("auto", "def fib(n):", false).await, "local");
    assert_eq!(model_sent(&s.local), "smollm2");
    s.stop().await;
}

#[tokio::test]
async fn auto_sends_a_long_prompt_to_the_hard_tier() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    // 200 approximate tokens is the test config's threshold: 1000 bytes is 250.
    answered_by(&s.chat("auto", &"lorem ".repeat(167), false).await, "hosted");
    answered_by(&s.chat("auto", &"lorem ".repeat(100), false).await, "local");
    s.stop().await;
}

#[tokio::test]
async fn auto_sends_a_prompt_with_code_to_the_hard_tier() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    let code = "why does this fail?\n```rust\nfn main() { let x: u8 = 256; }\n```";
    answered_by(&s.chat("auto", code, false).await, "hosted");
    assert_eq!(model_sent(&s.hosted), "gpt-4o-mini");
    s.stop().await;
}

#[tokio::test]
async fn auto_sends_a_deep_conversation_to_the_hard_tier() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    let turn = |role: &str, text: &str| json!({"role": role, "content": text});
    let mut messages =
        vec![turn("system", "be brief"), turn("user", "hi"), turn("assistant", "hi")];
    let shallow = json!({"model": "auto", "messages": messages}).to_string();
    answered_by(&s.post("/v1/chat/completions", &shallow, &[]).await, "local");
    messages.extend([turn("user", "and?"), turn("assistant", "so."), turn("user", "then?")]);
    let deep = json!({"model": "auto", "messages": messages}).to_string();
    answered_by(&s.post("/v1/chat/completions", &deep, &[]).await, "hosted");
    s.stop().await;
}

#[tokio::test]
async fn auto_sends_a_hard_reasoning_keyword_to_the_hard_tier() {
    let s = start(Behavior::Normal, Behavior::Normal, Extra::default()).await;
    answered_by(
        &s.chat("auto", "Prove that there are infinitely many primes", false).await,
        "hosted",
    );
    answered_by(&s.chat("auto", "improve this sentence", false).await, "local");
    s.stop().await;
}

#[tokio::test]
async fn a_tenant_pinned_to_a_tier_gets_it_for_alias_requests() {
    let top = "[[tenant]]\nname = \"acme\"\nkey_env = \"ACME_KEY\"\n\n\
               [[tenant]]\nname = \"beta\"\nkey_env = \"BETA_KEY\"\n";
    let env = HashMap::from([
        ("ACME_KEY".to_string(), "sy-acme".to_string()),
        ("BETA_KEY".to_string(), "sy-beta".to_string()),
    ]);
    let extra = Extra { router: "tenants = { acme = \"hosted\" }", top, env, ..Extra::default() };
    let s = start(Behavior::Normal, Behavior::Normal, extra).await;
    let body = switchyard_tests::chat_body("fast", "hi", false);
    let acme = [("authorization", "Bearer sy-acme")];
    answered_by(&s.post("/v1/chat/completions", &body, &acme).await, "hosted");
    let beta = [("authorization", "Bearer sy-beta")];
    answered_by(&s.post("/v1/chat/completions", &body, &beta).await, "local");
    s.stop().await;
}

#[tokio::test]
async fn a_header_hint_picks_the_tier_of_an_alias_request() {
    let extra = Extra {
        router: "hint_header = \"x-switchyard-tier\"",
        plugins: "headers = [\"x-switchyard-tier\"]",
        ..Extra::default()
    };
    let s = start(Behavior::Normal, Behavior::Normal, extra).await;
    let body = switchyard_tests::chat_body("fast", "hi", false);
    let hint = |v| [("x-switchyard-tier", v)];
    answered_by(&s.post("/v1/chat/completions", &body, &hint("hosted")).await, "hosted");
    answered_by(&s.post("/v1/chat/completions", &body, &hint("best")).await, "hosted");
    answered_by(&s.post("/v1/chat/completions", &body, &hint("bogus")).await, "local");
    s.stop().await;
}

#[tokio::test]
async fn image_requests_go_to_the_images_tier() {
    let extra = Extra { router: "images = \"draw\"", ..Extra::default() };
    let s = start(Behavior::Normal, Behavior::Normal, extra).await;
    let body = json!({"model": "anything", "prompt": "a lighthouse at dusk"}).to_string();
    answered_by(&s.post("/v1/images/generations", &body, &[]).await, "images");
    assert_eq!(model_sent(&s.images), "dall-e-3");
    assert_eq!(s.hits(), (0, 0, 1, 0));
    s.stop().await;
}

#[tokio::test]
async fn the_tiers_fallbacks_answer_when_its_upstream_is_down() {
    let s = start(Behavior::Status(503), Behavior::Normal, Extra::default()).await;
    let reply = s.chat("fast", "hi", false).await;
    answered_by(&reply, "hosted");
    assert_eq!((s.local.hits(), s.hosted.hits()), (1, 1));
    s.stop().await;
}

#[tokio::test]
async fn a_residency_tag_keeps_the_request_local_with_no_hosted_fallback() {
    let extra = Extra {
        router: "residency = \"local-only\"\nresidency_tags = [\"template\"]",
        template_first: true,
        ..Extra::default()
    };
    let s = start(Behavior::Normal, Behavior::Normal, extra).await;
    // Tagged by the template plugin: `best` and a plain model name both stay local.
    answered_by(&s.chat("best", "my email is ann@example.com", false).await, "local");
    answered_by(&s.chat("gpt-4o", "my email is ann@example.com", true).await, "local");
    assert_eq!(s.hits(), (2, 0, 0, 0));
    // The local tier is down: the request fails rather than leave the premises.
    s.local.set_behavior(Behavior::Status(503));
    let reply = s.chat("best", "my email is ann@example.com", false).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), "local");
    assert_eq!(s.hosted.hits(), 0, "nothing reached a hosted upstream");
    s.stop().await;
}

/// Loads the router with `config` against upstreams `local` and `hosted`: the load error, if any.
async fn load_error(config: serde_json::Value) -> Option<String> {
    use switchyard::plugin::{
        FailurePolicy, PluginEngine, PluginEntry, PluginRegistry, PluginsSection,
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(switchyard_tests::wasm::TIER_ROUTER, dir.path().join("r.wasm")).unwrap();
    let mut entry = PluginEntry::new("tier-router", "r.wasm", FailurePolicy::Open);
    entry.timeout_ms = 200;
    entry.config = config.as_object().unwrap().clone();
    let engine = PluginEngine::new(switchyard_tests::test_engine_limits()).unwrap();
    let upstreams = ["local", "hosted"].map(String::from).into_iter().collect();
    let registry =
        PluginRegistry::new(engine, PluginsSection::new(dir.path()), vec![entry], upstreams);
    registry.reload().await.err().map(|e| e.to_string())
}

#[tokio::test]
async fn a_config_with_an_unknown_upstream_or_tier_never_goes_live() {
    let tiers = json!({"local": {"upstream": "local", "fallbacks": ["hosted"]},
                       "hosted": {"upstream": "hosted"}});
    assert_eq!(load_error(json!({"tiers": tiers, "aliases": {"auto": "auto"}})).await, None);

    // The load probe names every upstream the tiers use, so the host checks them all.
    let bad = json!({"tiers": {"local": {"upstream": "local", "fallbacks": ["nowhere"]}}});
    let err = load_error(bad).await.expect("refused");
    assert!(err.contains("invalid decision: unknown upstream") && err.contains("nowhere"), "{err}");

    let bad = json!({"tiers": tiers, "aliases": {"fast": "lcoal"}, "tenants": {"acme": "gold"}});
    let err = load_error(bad).await.expect("refused");
    assert!(err.contains("aliases.fast") && err.contains("tenants.acme"), "{err}");
}

#[tokio::test]
async fn the_documented_example_config_loads() {
    #[derive(serde::Deserialize)]
    struct Example {
        plugin: Vec<toml::Table>,
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/tier-router/config.example.toml");
    let example: Example = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let config = serde_json::to_value(&example.plugin[0]["config"]).unwrap();
    assert_eq!(load_error(config).await, None);
}
