//! The `cache-policy` built-in plugin: decides, per request, whether the proxy's response cache may
//! serve and store the answer, under which key and for how long (see README.md). The host scopes
//! every key by tenant and endpoint and honours the client's `cache-control` itself.

use serde::Deserialize;
use switchyard_plugin_sdk::{
    Changes, Config, Decision, Plugin, Request, counter_add, export_plugin,
};

/// The `config` table of the plugin's `[[plugin]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    /// How long an answer is kept.
    #[serde(default = "default_ttl")]
    ttl_seconds: u32,
    /// Cache only answers that should not vary: `temperature` 0, a `seed`, or embeddings.
    #[serde(default = "yes")]
    deterministic_only: bool,
    /// Endpoints whose answers may be cached.
    #[serde(default = "default_endpoints")]
    endpoints: Vec<String>,
    /// A request carrying any of these tags (from earlier plugins) is not cached.
    #[serde(default)]
    bypass_tags: Vec<String>,
    /// Tags from earlier plugins whose name starts with one of these go into the key, so that
    /// requests routed differently never share an answer.
    #[serde(default = "default_key_tags")]
    key_tags: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ttl_seconds: default_ttl(),
            deterministic_only: true,
            endpoints: default_endpoints(),
            bypass_tags: Vec::new(),
            key_tags: default_key_tags(),
        }
    }
}

fn default_ttl() -> u32 {
    300
}

fn yes() -> bool {
    true
}

fn default_endpoints() -> Vec<String> {
    ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"].map(String::from).to_vec()
}

fn default_key_tags() -> Vec<String> {
    vec!["route.".to_string()]
}

/// The sampling parameters that decide whether an answer is reproducible.
#[derive(Deserialize)]
struct Sampling {
    temperature: Option<f64>,
    seed: Option<serde_json::Value>,
}

impl Policy {
    /// Why this request must not be cached, if it must not.
    fn skip_reason(&self, req: &Request) -> Option<&'static str> {
        if !self.endpoints.contains(&req.endpoint) {
            return Some("endpoint");
        }
        if req.tags.iter().any(|(k, _)| self.bypass_tags.contains(k)) {
            return Some("tag");
        }
        if self.deterministic_only && req.endpoint != "/v1/embeddings" {
            let sampling: Sampling = serde_json::from_str(&req.params_json)
                .unwrap_or(Sampling { temperature: None, seed: None });
            let seeded = sampling.seed.is_some_and(|s| !s.is_null());
            if sampling.temperature != Some(0.0) && !seeded {
                return Some("sampling");
            }
        }
        None
    }

    /// The key: tenant, endpoint, model, every message, every other parameter, and the routing
    /// tags; each part length-prefixed so that no two requests share a key by concatenation.
    fn key(&self, req: &Request) -> String {
        let mut key = String::with_capacity(
            256 + req.messages.iter().map(|m| m.content.len()).sum::<usize>(),
        );
        let mut part = |s: &str| {
            key.push_str(&s.len().to_string());
            key.push(':');
            key.push_str(s);
        };
        part(req.tenant.as_deref().unwrap_or(""));
        part(&req.endpoint);
        part(req.model.as_deref().unwrap_or(""));
        part(&req.params_json);
        for message in &req.messages {
            part(&message.role);
            part(&message.content);
        }
        for (name, value) in &req.tags {
            if self.key_tags.iter().any(|prefix| name.starts_with(prefix.as_str())) {
                part(name);
                part(value);
            }
        }
        key
    }
}

impl Plugin for Policy {
    fn init(&mut self, config: Config) -> Result<(), String> {
        *self = config.parse()?;
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let changes = match self.skip_reason(&req) {
            Some(reason) => {
                counter_add(&format!("skipped_{reason}"), 1);
                Changes::new().tag("cache", "skip").tag("cache.reason", reason)
            }
            None => {
                counter_add("eligible", 1);
                Changes::new().cache(&self.key(&req), self.ttl_seconds).tag("cache", "store")
            }
        };
        Ok(Decision::Proceed(changes))
    }
}

export_plugin!(Policy);
