//! Unit tests of the routing decision: one per rule, and the order of precedence.

use switchyard_plugin_sdk::Message;

use super::*;

fn config(extra: &str) -> RouterConfig {
    let json = format!(
        r#"{{"tiers": {{"local": {{"upstream": "local", "model": "smollm2", "fallbacks": ["hosted"]}},
                       "hosted": {{"upstream": "hosted", "model": "gpt-4o-mini"}},
                       "draw": {{"upstream": "images"}}}},
            "aliases": {{"fast": "local", "best": "hosted", "auto": "auto"}}{extra}}}"#
    );
    RouterConfig::from_json(&json).expect("valid config")
}

fn req(model: &str, text: &str) -> Request {
    Request {
        endpoint: "/v1/chat/completions".into(),
        model: Some(model.into()),
        stream: false,
        messages: vec![Message { role: "user".into(), content: text.into() }],
        params_json: "{}".into(),
        tenant: None,
        headers: Vec::new(),
        tags: Vec::new(),
    }
}

fn decided(config: &RouterConfig, req: &Request) -> Option<(String, Reason)> {
    decide(config, req, None).map(|r| (r.tier, r.reason))
}

fn is(tier: &str, reason: Reason) -> Option<(String, Reason)> {
    Some((tier.to_string(), reason))
}

#[test]
fn fixed_aliases_pick_their_tier() {
    let c = config("");
    assert_eq!(decided(&c, &req("fast", "hi")), is("local", Reason::Alias));
    assert_eq!(decided(&c, &req("best", "hi")), is("hosted", Reason::Alias));
}

#[test]
fn models_that_are_not_aliases_pass_through() {
    let c = config(r#", "tenants": {"acme": "hosted"}"#);
    let mut r = req("gpt-4o", "prove it step by step");
    r.tenant = Some("acme".into());
    assert_eq!(decided(&c, &r), None);
    r.model = None;
    assert_eq!(decided(&c, &r), None);
}

#[test]
fn auto_sends_each_hard_signal_to_the_hard_tier() {
    let c = config(r#", "hard_min_tokens": 50, "code_blocks_hard": 1, "depth_hard": 3"#);
    assert_eq!(decided(&c, &req("auto", "complete this line")), is("local", Reason::Easy));
    let long = "word ".repeat(40);
    assert_eq!(decided(&c, &req("auto", &long)), is("hosted", Reason::HardTokens));
    let code = "fix\n```rust\nfn a() {}\n```";
    assert_eq!(decided(&c, &req("auto", code)), is("hosted", Reason::CodeBlocks));
    let mut deep = req("auto", "and then?");
    deep.messages = ["q", "a", "q"]
        .iter()
        .zip(["user", "assistant", "user"])
        .map(|(t, role)| Message { role: role.into(), content: t.to_string() })
        .collect();
    assert_eq!(decided(&c, &deep), is("hosted", Reason::Depth));
    assert_eq!(decided(&c, &req("auto", "Prove that 2 is prime")), is("hosted", Reason::Keyword));
}

#[test]
fn zero_thresholds_turn_rules_off() {
    let c = config(r#", "hard_min_tokens": 0, "code_blocks_hard": 0, "hard_keywords": []"#);
    let r = req("auto", &format!("prove ```a``` {}", "x".repeat(20_000)));
    assert_eq!(decided(&c, &r), is("local", Reason::Easy));
}

#[test]
fn tenant_beats_hint_which_beats_the_alias() {
    let c = config(r#", "tenants": {"acme": "hosted"}, "hint_header": "X-Switchyard-Tier""#);
    let mut r = req("fast", "hi");
    r.headers = vec![("x-switchyard-tier".into(), "best".into())];
    assert_eq!(decided(&c, &r), is("hosted", Reason::Hint), "an alias name as hint");
    r.headers = vec![("x-switchyard-tier".into(), "hosted".into())];
    assert_eq!(decided(&c, &r), is("hosted", Reason::Hint), "a tier name as hint");
    r.headers = vec![("x-switchyard-tier".into(), "nonsense".into())];
    assert_eq!(decided(&c, &r), is("local", Reason::Alias), "unknown hints are ignored");
    r.model = Some("best".into());
    r.headers = vec![("x-switchyard-tier".into(), "fast".into())];
    r.tenant = Some("acme".into());
    assert_eq!(decided(&c, &r), is("hosted", Reason::Tenant));
}

#[test]
fn images_go_to_the_images_tier_whatever_the_model() {
    let c = config(r#", "images": "draw""#);
    let mut r = req("dall-e-3", "a cat");
    r.endpoint = "/v1/images/generations".into();
    assert_eq!(decided(&c, &r), is("draw", Reason::Images));
    assert_eq!(decided(&config(""), &r), None, "no images tier: default routing");
}

#[test]
fn residency_tags_force_the_local_tier_before_any_other_rule() {
    let c = config(r#", "residency": "local-only", "tenants": {"acme": "hosted"}"#);
    let mut r = req("gpt-4o", "my name is Ann");
    r.tenant = Some("acme".into());
    r.tags = vec![("pii".into(), "2".into()), ("pii.email".into(), "2".into())];
    assert_eq!(decided(&c, &r), is("local", Reason::Residency));
    r.tags = vec![("pii".into(), "0".into())];
    assert_eq!(decided(&c, &r), None, "a zero count is no finding");
    r.tags = vec![("pii".into(), "1".into())];
    assert_eq!(decided(&config(""), &r), None, "residency = any ignores tags");
}

#[test]
fn bad_configs_list_every_problem() {
    let json = r#"{"tiers": {"a": {"upstream": "x"}}, "aliases": {"f": "nope", "g": "auto"},
                   "tenants": {"t": "gone"}, "cascade": true}"#;
    let err = RouterConfig::from_json(json).expect_err("invalid");
    for needle in ["aliases.f", "tenants.t", "easy_tier", "hard_tier", "cascade_from", "cascade_to"]
    {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    assert!(RouterConfig::from_json(r#"{"tiers": {}, "typo": 1}"#).is_err(), "unknown keys");
}

#[test]
fn the_budget_rule_is_off_by_default_and_spent_counts_at_any_threshold() {
    let off = RouterConfig::from_json(r#"{"tiers": {"local": {"upstream": "l"}}}"#).expect("ok");
    assert!(!budget_low(&off, Some(0.0)));
    let zero = RouterConfig::from_json(
        r#"{"tiers": {"local": {"upstream": "l"}}, "local_when_budget_below_usd": 0}"#,
    )
    .expect("ok");
    assert!(budget_low(&zero, Some(0.0)));
    assert!(!budget_low(&zero, Some(0.000001)));
    assert!(!budget_low(&zero, None), "a tenant without a budget is never low");
    let bad = r#"{"tiers": {"local": {"upstream": "l"}}, "local_when_budget_below_usd": -1,
                  "budget_tier": "cheap"}"#;
    let err = RouterConfig::from_json(bad).expect_err("refused");
    assert!(err.contains("budget_tier: unknown tier \"cheap\""), "{err}");
    assert!(err.contains("local_when_budget_below_usd: -1"), "{err}");
}
