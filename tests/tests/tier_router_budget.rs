//! The tier-router's budget rule end to end (contract 0.1.1's `tenant-limits`): a tenant with a
//! day budget and a price on `hosted` is routed to `hosted` while its remaining budget is at or
//! above `local_when_budget_below_usd`, then to the free `local` tier, where it still gets
//! answers (also ones whose worst case no longer fits the budget) instead of 429
//! `insufficient_quota`: the budget route drops the tier's hosted fallback, so admission reserves
//! at the local price, 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

mod tier_router_support;

use std::collections::HashMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use switchyard_tests::client;
use switchyard_tests::mock::Behavior;
use tier_router_support::{Extra, Stack, answered_by, model_sent, start};

const KEY: &str = "sy-acme";
const ADMIN: &str = "admin-t0ken";

/// $1000 per million tokens, in and out: $0.001 a token. The mock reports 1 prompt token ("hi")
/// and 3 completion tokens ("hosted heard: hi"), so each hosted answer costs exactly $0.004.
const TOP: &str = "[[tenant]]\nname = \"acme\"\nkey_env = \"ACME_KEY\"\nbudget_usd_per_day = 0.05\n\n\
                   [[price]]\nupstream = \"hosted\"\ninput_usd_per_mtok = 1000.0\n\
                   output_usd_per_mtok = 1000.0\n";

async fn ask(s: &Stack, max_tokens: u64) -> client::Reply {
    let body = json!({"model": "best", "max_tokens": max_tokens,
                      "messages": [{"role": "user", "content": "hi"}]});
    s.post("/v1/chat/completions", &body.to_string(), &[("authorization", "Bearer sy-acme")]).await
}

async fn window(s: &Stack) -> Value {
    let req = Request::get(s.proxy.admin_url("/admin/usage"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = client::read(client::send(req).await).await;
    reply.json()["tenants"][0]["window"].clone()
}

/// Waits until the last answer is settled (no request in flight) and the day's spend is `usd`.
async fn settled(s: &Stack, usd: f64) {
    for _ in 0..2000 {
        let w = window(s).await;
        let spent = w["cost_usd_today"].as_f64().unwrap_or(-1.0);
        if w["in_flight"] == 0 && (spent - usd).abs() < 1e-9 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never settled at ${usd}: {}", window(s).await);
}

#[tokio::test]
async fn a_low_budget_routes_to_the_local_tier_which_still_answers() {
    let env = HashMap::from([
        ("ACME_KEY".to_string(), KEY.to_string()),
        ("ADMIN_TOKEN".to_string(), ADMIN.to_string()),
    ]);
    let router = "local_when_budget_below_usd = 0.031\ncascade = true";
    let extra = Extra { router, top: TOP, env, admin_token: true, ..Extra::default() };
    let s = start(Behavior::Normal, Behavior::Normal, extra).await;

    // Remaining $0.050, 0.046, 0.042, 0.038, 0.034: at or above $0.031, hosted.
    for k in 0..5 {
        let reply = ask(&s, 10).await;
        answered_by(&reply, "hosted");
        settled(&s, 0.004 * f64::from(k + 1)).await;
    }
    assert_eq!(model_sent(&s.hosted), "gpt-4o-mini");
    // $0.030 left: local, with no hosted fallback and no cascade to hosted.
    for _ in 0..3 {
        answered_by(&ask(&s, 10).await, "local");
    }
    // A worst case of 40+ tokens ($0.04+) would not fit the $0.030 left at the hosted price: on
    // the local route it reserves nothing and is answered.
    answered_by(&ask(&s, 40).await, "local");
    assert_eq!(model_sent(&s.local), "smollm2");
    assert_eq!(s.hits(), (4, 5, 0, 0));
    settled(&s, 0.020).await;
    s.stop().await;
}
