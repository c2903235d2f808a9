//! Replays fixtures against a component in the real host: a [`PluginRegistry`] with the proxy's
//! default limits (or the fixture's `timeout_ms` / `memory_mib`), the load-time probe, the chain's
//! validation and merging, and the response phase, exactly as a request through the proxy gets
//! them. Only the HTTP around it is left out.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::expect;
use super::fixture::{Case, FixtureFile};
use crate::plugin::{
    LlmRequest, Message, PluginEngine, PluginEntry, PluginRegistry, PluginSet, PluginsSection,
};

/// The name the plugin under test gets in the harness's `[[plugin]]` entry.
pub const PLUGIN_NAME: &str = "plugin-under-test";

/// One case's result: empty `problems` means it passed.
#[derive(Debug)]
pub struct CaseResult {
    pub file: String,
    pub case: String,
    pub problems: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Load `wasm` with each file's settings and replay its cases. An error means the plugin did not
/// load (compile, probe or config) under some file's settings.
pub async fn run(wasm: &Path, files: &[(String, FixtureFile)]) -> Result<Vec<CaseResult>, String> {
    let mut results = Vec::new();
    for (path, file) in files {
        let set = load(wasm, file).await.map_err(|e| format!("{path}: {e}"))?;
        for case in &file.cases {
            let problems = run_case(&set, case).await;
            results.push(CaseResult { file: path.clone(), case: case.name.clone(), problems });
        }
    }
    Ok(results)
}

/// A registry holding only the plugin under test, loaded (compiled and probed) with `file`'s
/// settings. Returns its live set.
pub async fn load(wasm: &Path, file: &FixtureFile) -> Result<Arc<PluginSet>, String> {
    let dir = wasm.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = wasm.file_name().ok_or_else(|| format!("{}: not a file", wasm.display()))?;
    let mut entry = PluginEntry::new(PLUGIN_NAME, name, file.plugin.failure);
    entry.config = file.plugin.config.clone();
    entry.isolation = file.plugin.isolation;
    if let Some(ms) = file.plugin.timeout_ms {
        entry.timeout_ms = ms;
    }
    // Unset: the host's default (the component's initial memory plus headroom).
    entry.memory_mib = file.plugin.memory_mib.or(entry.memory_mib);
    let mut section = PluginsSection::new(dir);
    section.watch = false;
    if let Some(mib) = entry.memory_mib {
        section.max_memory_mib = section.max_memory_mib.max(mib);
    }
    let problems = crate::plugin::config::validate(&section, std::slice::from_ref(&entry));
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!("plugin settings: {}", list.join("; ")));
    }
    let engine = PluginEngine::new(section.engine_limits())?;
    let upstreams: BTreeSet<String> = file.upstreams.iter().cloned().collect();
    let registry = PluginRegistry::new(engine, section, vec![entry], upstreams);
    registry.reload().await.map_err(|e| e.to_string())?;
    Ok(registry.current())
}

/// Run one case through `set`; returns what did not match.
pub async fn run_case(set: &PluginSet, case: &Case) -> Vec<String> {
    let outcome = set.on_request(request(case)).await;
    let mut problems = Vec::new();
    let Some(mut proceed) = expect::request(&case.expect, outcome, &mut problems) else {
        return problems;
    };
    if let Some(response) = &case.response {
        expect::response(response, &mut proceed.watch, &mut problems).await;
    }
    if let Some(stream) = &case.stream {
        expect::stream(stream, &mut proceed.watch, &mut problems).await;
    }
    problems
}

/// The fixture's request as the chain sees it.
pub fn request(case: &Case) -> LlmRequest {
    let r = &case.request;
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    LlmRequest {
        endpoint: r.endpoint.clone(),
        model: r.model.clone(),
        stream: r.stream.unwrap_or(case.stream.is_some()),
        messages: r
            .messages
            .iter()
            .map(|m| Message { role: m.role.clone(), content: m.content.clone() })
            .collect(),
        params_json: serde_json::Value::Object(r.params.clone()).to_string(),
        tenant: r.tenant.clone(),
        headers: pairs(&r.headers),
        tags: pairs(&r.tags),
    }
}
