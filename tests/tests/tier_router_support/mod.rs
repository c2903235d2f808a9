//! Shared setup for the tier-router end-to-end tests: four recording mock upstreams (`local`,
//! `hosted`, `images`, and `default`, the proxy's own default route), the built tier-router
//! component (optionally after the `template` plugin, which tags every request `template=seen`),
//! and a request helper that can send headers.
#![allow(dead_code)]
// Test helpers: a failed setup step should panic with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use switchyard_tests::client::{self, Reply};
use switchyard_tests::harness::{Proxy, config};
use switchyard_tests::mock::{Behavior, MockUpstream};
use switchyard_tests::wasm;

/// The router's tiers and aliases every test shares; `extra` keys go above them.
const ROUTER: &str = r#"
[[plugin]]
name = "tier-router"
file = "tier_router.wasm"
failure = "closed"
timeout_ms = 200

[plugin.config]
aliases = { fast = "local", best = "hosted", auto = "auto" }
hard_min_tokens = 200
code_blocks_hard = 1
depth_hard = 4
EXTRA

[plugin.config.tiers.local]
upstream = "local"
model = "smollm2"
fallbacks = ["hosted"]

[plugin.config.tiers.hosted]
upstream = "hosted"
model = "gpt-4o-mini"

[plugin.config.tiers.draw]
upstream = "images"
model = "dall-e-3"
"#;

/// What a test adds to the shared setup.
#[derive(Default)]
pub struct Extra<'a> {
    /// Keys of the router's config table (TOML lines).
    pub router: &'a str,
    /// Run the `template` plugin before the router (it tags `template = "seen"`).
    pub template_first: bool,
    /// Top-level TOML (say `[[tenant]]` tables).
    pub top: &'a str,
    /// Lines of the `[plugins]` table (say `headers = [...]`).
    pub plugins: &'a str,
    /// Environment for secrets (tenant keys).
    pub env: HashMap<String, String>,
    /// Guard the admin API with the token in env `ADMIN_TOKEN` (for `GET /admin/usage`).
    pub admin_token: bool,
}

/// A running proxy in front of the four mocks.
pub struct Stack {
    pub proxy: Proxy,
    pub local: MockUpstream,
    pub hosted: MockUpstream,
    pub images: MockUpstream,
    pub default: MockUpstream,
    _dir: tempfile::TempDir,
}

/// Starts the stack with the mocks behaving as given.
pub async fn start(local: Behavior, hosted: Behavior, extra: Extra<'_>) -> Stack {
    let local = MockUpstream::start("local", local).await;
    let hosted = MockUpstream::start("hosted", hosted).await;
    let images = MockUpstream::start("images", Behavior::Normal).await;
    let default = MockUpstream::start("default", Behavior::Normal).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(wasm::TIER_ROUTER, dir.path().join("tier_router.wasm")).expect("copy router");
    std::fs::copy(wasm::TEMPLATE, dir.path().join("template.wasm")).expect("copy template");
    let upstreams = [
        ("local", local.base_url()),
        ("hosted", hosted.base_url()),
        ("images", images.base_url()),
        ("default", default.base_url()),
    ];
    let upstreams: Vec<(&str, &str, &str)> =
        upstreams.iter().map(|(n, u)| (*n, u.as_str(), "")).collect();
    let mut cfg = config(&upstreams, "default = \"default\"\nimages = \"default\"");
    if extra.admin_token {
        let admin = "[admin]\nlisten = \"127.0.0.1:0\"\n";
        cfg = cfg.replace(admin, &format!("{admin}token_env = \"ADMIN_TOKEN\"\n"));
    }
    cfg.push_str(&format!("\n{}\n", extra.top));
    cfg.push_str(&format!(
        "[plugins]\ndir = {:?}\nwatch = false\n{}\n",
        dir.path().display().to_string(),
        extra.plugins
    ));
    if extra.template_first {
        cfg.push_str(
            "\n[[plugin]]\nname = \"template\"\nfile = \"template.wasm\"\nfailure = \"closed\"\ntimeout_ms = 200\n",
        );
    }
    cfg.push_str(&ROUTER.replace("EXTRA", extra.router));
    let proxy = Proxy::start_with_env(&cfg, extra.env).await;
    Stack { proxy, local, hosted, images, default, _dir: dir }
}

impl Stack {
    /// POSTs `body` to `path` with `headers` and reads the whole answer.
    pub async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request =
            Request::post(self.proxy.url(path)).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        client::read(client::send(request).await).await
    }

    /// A chat request with one user message, no headers.
    pub async fn chat(&self, model: &str, text: &str, stream: bool) -> Reply {
        let body = switchyard_tests::chat_body(model, text, stream);
        self.post("/v1/chat/completions", &body, &[]).await
    }

    /// How many requests each mock received: (local, hosted, images, default).
    pub fn hits(&self) -> (usize, usize, usize, usize) {
        (self.local.hits(), self.hosted.hits(), self.images.hits(), self.default.hits())
    }

    pub async fn stop(self) {
        self.proxy.stop().await;
    }
}

/// The `model` of the last request `mock` received.
pub fn model_sent(mock: &MockUpstream) -> Value {
    mock.received().last().expect("the mock got a request").json()["model"].clone()
}

/// Asserts the answer is a 200 from `upstream`.
pub fn answered_by(reply: &Reply, upstream: &str) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-upstream"), upstream, "{}", reply.text());
}
