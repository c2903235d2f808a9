//! Shared helpers for the plugin tests: an engine with small limits, a plugin directory holding
//! copies of the built components, and request builders.
#![allow(dead_code)]
// Test helpers: a failed setup step should panic with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchyard::plugin::{
    EngineLimits, FailurePolicy, LlmRequest, Message, PluginEngine, PluginEntry, PluginRegistry,
    PluginsSection,
};

pub const UPSTREAMS: [&str; 3] = ["local", "frontier", "big"];

pub fn upstreams() -> BTreeSet<String> {
    UPSTREAMS.iter().map(|s| s.to_string()).collect()
}

pub fn engine(max_instances: u32) -> Arc<PluginEngine> {
    PluginEngine::new(EngineLimits {
        max_instances,
        queue_timeout: Duration::from_millis(50),
        ..switchyard_tests::test_engine_limits()
    })
    .expect("engine")
}

/// A temp dir holding `file` copies of built components.
pub fn plugin_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, component) in files {
        std::fs::copy(component, dir.path().join(file)).expect("copy component");
    }
    dir
}

pub fn entry(
    name: &str,
    file: &str,
    failure: FailurePolicy,
    config: serde_json::Value,
) -> PluginEntry {
    let mut e = PluginEntry::new(name, file, failure);
    if let serde_json::Value::Object(map) = config {
        e.config = map;
    }
    // Generous default deadline: these tests run on 2 busy cores; deadline tests set their own.
    e.timeout_ms = 200;
    e
}

/// A loaded registry over `dir` with these entries; panics if loading fails.
pub async fn registry(
    engine: Arc<PluginEngine>,
    dir: &Path,
    entries: Vec<PluginEntry>,
) -> Arc<PluginRegistry> {
    let reg = PluginRegistry::new(engine, PluginsSection::new(dir), entries, upstreams());
    reg.reload().await.expect("load plugins");
    Arc::new(reg)
}

pub fn chat(texts: &[&str]) -> LlmRequest {
    LlmRequest {
        endpoint: "/v1/chat/completions".into(),
        model: Some("test-model".into()),
        stream: false,
        messages: texts
            .iter()
            .map(|t| Message { role: "user".into(), content: t.to_string() })
            .collect(),
        params_json: "{}".into(),
        tenant: Some("tenant-a".into()),
        headers: vec![],
        tags: vec![],
    }
}

pub fn tag<'a>(req: &'a LlmRequest, key: &str) -> Option<&'a str> {
    req.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}
