//! Unit tests of the decision the glue hands the host: route, fallbacks, tags, watching, probe.

use switchyard_plugin_sdk::Message;

use super::*;

fn config() -> RouterConfig {
    let json = r#"{"tiers": {"local": {"upstream": "local", "model": "smollm2", "fallbacks": ["hosted"]},
                             "hosted": {"upstream": "hosted", "model": "gpt-4o-mini", "fallbacks": ["spare"]}},
                   "aliases": {"fast": "local", "best": "hosted"},
                   "residency": "local-only", "cascade": true}"#;
    RouterConfig::from_json(json).expect("valid config")
}

fn req(model: &str, endpoint: &str, params: &str) -> Request {
    Request {
        endpoint: endpoint.into(),
        model: Some(model.into()),
        stream: true,
        messages: vec![Message { role: "user".into(), content: "hi".into() }],
        params_json: params.into(),
        tenant: None,
        headers: Vec::new(),
        tags: Vec::new(),
    }
}

fn tag<'a>(changes: &'a Changes, key: &str) -> Option<&'a str> {
    changes.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const CHAT: &str = "/v1/chat/completions";

#[test]
fn a_routed_request_gets_route_fallbacks_tags_and_the_cascade() {
    let (changes, cascade) =
        changes_for(&config(), &req("fast", CHAT, "{}"), None).expect("decided");
    let route = changes.route.as_ref().expect("a route");
    assert_eq!((route.upstream.as_str(), route.model.as_deref()), ("local", Some("smollm2")));
    assert_eq!(route.fallbacks, ["hosted"]);
    assert_eq!(tag(&changes, "route.tier"), Some("local"));
    assert_eq!(tag(&changes, "route.reason"), Some("alias"));
    assert_eq!(tag(&changes, "route.cascade"), Some("hosted"));
    assert!(changes.watch_response);
    let cascade = cascade.expect("armed");
    assert_eq!(cascade.to.upstream, "hosted");
    assert_eq!(cascade.to.model.as_deref(), Some("gpt-4o-mini"));
}

#[test]
fn the_cascade_is_armed_only_where_it_can_work() {
    let c = config();
    let armed = |r: &Request| changes_for(&c, r, None).expect("decided").1.is_some();
    assert!(!armed(&req("best", CHAT, "{}")), "the hosted tier is not judged");
    assert!(!armed(&req("fast", "/v1/embeddings", "{}")), "embeddings have no answer text");
    assert!(!armed(&req("fast", CHAT, r#"{"n": 2}"#)), "several choices");
    assert!(armed(&req("fast", "/v1/completions", r#"{"n": 1}"#)));
}

#[test]
fn residency_drops_fallbacks_and_the_cascade() {
    let mut r = req("best", CHAT, "{}");
    r.tags = vec![("pii".into(), "1".into())];
    let (changes, cascade) = changes_for(&config(), &r, None).expect("decided");
    let route = changes.route.as_ref().expect("a route");
    assert_eq!(route.upstream, "local");
    assert!(route.fallbacks.is_empty());
    assert!(cascade.is_none() && !changes.watch_response);
    assert_eq!(tag(&changes, "route.reason"), Some("residency"));
}

#[test]
fn other_models_are_left_alone() {
    let (changes, cascade) = changes_for(&config(), &req("gpt-4o", CHAT, "{}"), None).expect("ok");
    assert!(changes.route.is_none() && cascade.is_none());
    assert_eq!(tag(&changes, "route.reason"), Some("passthrough"));
}

#[test]
fn the_probe_names_every_upstream_once() {
    let changes = probe_changes(&config());
    let route = changes.route.expect("a route");
    let mut all = vec![route.upstream];
    all.extend(route.fallbacks);
    all.sort();
    assert_eq!(all, ["hosted", "local", "spare"]);
}

#[test]
fn a_low_budget_goes_to_the_budget_tier_without_fallbacks_or_cascade() {
    let json = r#"{"tiers": {"local": {"upstream": "local", "model": "smollm2", "fallbacks": ["hosted"]},
                             "hosted": {"upstream": "hosted", "model": "gpt-4o-mini"}},
                   "aliases": {"fast": "local", "best": "hosted"}, "cascade": true,
                   "local_when_budget_below_usd": 0.5}"#;
    let config = RouterConfig::from_json(json).expect("valid config");
    let routed = |model: &str, budget| {
        let (changes, cascade) = changes_for(&config, &req(model, CHAT, "{}"), budget).expect("ok");
        let route = changes.route.clone().expect("a route");
        (
            route.upstream,
            route.fallbacks,
            tag(&changes, "route.reason").map(str::to_string),
            cascade.is_some(),
        )
    };
    assert_eq!(routed("best", Some(0.51)), ("hosted".into(), vec![], Some("alias".into()), false));
    assert_eq!(routed("best", None), ("hosted".into(), vec![], Some("alias".into()), false));
    for (model, left) in [("best", 0.49), ("fast", 0.0), ("gpt-4o", 0.1)] {
        let (upstream, fallbacks, reason, cascade) = routed(model, Some(left));
        assert_eq!((upstream.as_str(), reason.as_deref()), ("local", Some("budget")), "{model}");
        assert!(fallbacks.is_empty() && !cascade, "{model}: no hosted fallback, no cascade");
    }
}
