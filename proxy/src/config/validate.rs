//! Semantic checks over a parsed configuration: every problem is reported, none stops the rest.

use std::collections::HashSet;
use std::path::Path;

use super::{Config, Problem};

/// Most worker threads `server.workers` may ask for.
const MAX_WORKERS: usize = 256;

/// Checks the configuration as a whole and returns every problem found (empty when valid).
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut out = Problems::default();
    check_listeners(config, &mut out);
    check_upstreams(config, &mut out);
    check_routing(config, &mut out);
    check_tenants(config, &mut out);
    check_plugins(config, &mut out);
    check_cache(config, &mut out);
    check_telemetry(config, &mut out);
    out.0.extend(super::ledger::validate(config));
    out.0
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { path: path.into(), message: message.into() });
    }
}

fn check_listeners(config: &Config, out: &mut Problems) {
    let server = &config.server;
    let api = server.listen_addr();
    if let Err(e) = &api {
        out.push("server.listen", format!("`{}` is not a host:port address: {e}", server.listen));
    }
    let admin = config.admin.listen_addr();
    if let Err(e) = &admin {
        out.push(
            "admin.listen",
            format!("`{}` is not a host:port address: {e}", config.admin.listen),
        );
    }
    if let (Ok(api), Ok(admin)) = (api, admin)
        && api == admin
        && api.port() != 0
    {
        out.push("admin.listen", "must differ from server.listen");
    }
    if server.max_body_bytes == 0 {
        out.push("server.max_body_bytes", "must be greater than 0");
    }
    if server.workers > MAX_WORKERS {
        out.push("server.workers", format!("must be at most {MAX_WORKERS} (0: one per CPU)"));
    }
    if server.max_buffered_body_bytes < server.max_body_bytes {
        out.push("server.max_buffered_body_bytes", "must be at least server.max_body_bytes");
    }
    for (key, value) in [
        ("server.header_read_timeout_ms", server.header_read_timeout_ms),
        ("server.body_read_timeout_ms", server.body_read_timeout_ms),
        ("server.idle_timeout_ms", server.idle_timeout_ms),
        ("server.send_timeout_ms", server.send_timeout_ms),
        ("server.http2_keepalive_interval_ms", server.http2_keepalive_interval_ms),
        ("server.max_connections", server.max_connections as u64),
        ("server.max_sse_event_bytes", server.max_sse_event_bytes as u64),
        ("server.max_response_bytes", server.max_response_bytes),
    ] {
        if value == 0 {
            out.push(key, "must be greater than 0");
        }
    }
    if let Some(tls) = &server.tls {
        check_file("server.tls.cert", &tls.cert, out);
        check_file("server.tls.key", &tls.key, out);
    }
    if let Some(name) = &config.admin.token_env {
        check_env_name("admin.token_env", name, out);
    }
}

fn check_upstreams(config: &Config, out: &mut Problems) {
    if config.upstreams.is_empty() {
        out.push("upstream", "at least one [[upstream]] is required");
    }
    let mut seen = HashSet::new();
    for (i, upstream) in config.upstreams.iter().enumerate() {
        let at = |key: &str| format!("upstream[{i}].{key}");
        let name = &upstream.name;
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            out.push(at("name"), format!("`{name}` must be non-empty letters, digits, `-` or `_`"));
        } else if !seen.insert(name.as_str()) {
            out.push(at("name"), format!("`{name}` is used by another upstream"));
        }
        check_base_url(&at("base_url"), &upstream.base_url, out);
        if let Some(env) = &upstream.api_key_env {
            check_env_name(&at("api_key_env"), env, out);
        }
        if let Some(ca) = &upstream.ca_file {
            check_file(&at("ca_file"), ca, out);
        }
        if upstream.model.as_deref() == Some("") {
            out.push(at("model"), "must not be empty; leave it out to keep the client's model");
        }
        for (key, value) in [
            ("connect_timeout_ms", upstream.connect_timeout_ms),
            ("first_byte_timeout_ms", upstream.first_byte_timeout_ms),
            ("total_timeout_ms", upstream.total_timeout_ms),
        ] {
            if value == 0 {
                out.push(at(key), "must be greater than 0");
            }
        }
        if upstream.first_byte_timeout_ms > upstream.total_timeout_ms {
            out.push(at("first_byte_timeout_ms"), "must not exceed total_timeout_ms");
        }
        if upstream.retries > 10 {
            out.push(at("retries"), "at most 10: use fallbacks for more resilience");
        }
    }
}

fn check_routing(config: &Config, out: &mut Problems) {
    let names: HashSet<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    let routing = &config.routing;
    let known = |key: String, name: &str, out: &mut Problems| {
        if !names.contains(name) {
            out.push(key, format!("no [[upstream]] is named `{name}`"));
        }
    };
    known("routing.default".into(), &routing.default, out);
    let mut chain = HashSet::from([routing.default.as_str()]);
    for (i, name) in routing.fallbacks.iter().enumerate() {
        known(format!("routing.fallbacks[{i}]"), name, out);
        if !chain.insert(name.as_str()) {
            out.push(
                format!("routing.fallbacks[{i}]"),
                format!("`{name}` is already in the chain"),
            );
        }
    }
    if let Some(images) = &routing.images {
        known("routing.images".into(), images, out);
    }
}

fn check_tenants(config: &Config, out: &mut Problems) {
    let mut seen = HashSet::new();
    let mut key_envs = std::collections::HashMap::new();
    for (i, tenant) in config.tenants.iter().enumerate() {
        // One variable for two tenants is one key for two tenants (the values are checked at
        // start, by `auth::Tenants::build`).
        if let Some(first) = key_envs.insert(tenant.key_env.as_str(), i) {
            out.push(
                format!("tenant[{i}].key_env"),
                format!(
                    "`{}` is also tenant[{first}]'s key: each tenant needs its own key",
                    tenant.key_env
                ),
            );
        }
        if tenant.name.is_empty() {
            out.push(format!("tenant[{i}].name"), "must not be empty");
        } else if !seen.insert(tenant.name.as_str()) {
            out.push(
                format!("tenant[{i}].name"),
                format!("`{}` is used by another tenant", tenant.name),
            );
        }
        check_env_name(&format!("tenant[{i}].key_env"), &tenant.key_env, out);
    }
}

fn check_cache(config: &Config, out: &mut Problems) {
    let cache = &config.cache;
    if !(1..=65_536).contains(&cache.max_mib) {
        out.push("cache.max_mib", "must be between 1 and 65536");
    }
    if cache.max_entry_kib == 0 || cache.max_entry_kib > cache.max_mib.saturating_mul(1024) {
        out.push("cache.max_entry_kib", "must be at least 1 and at most cache.max_mib × 1024");
    }
    if cache.shared && config.state.backend != super::StateBackend::Redis {
        out.push(
            "cache.shared",
            "needs [state] backend = \"redis\" (the shared level lives there)",
        );
    }
    if !(1..=10_000).contains(&cache.shared_timeout_ms) {
        out.push("cache.shared_timeout_ms", "must be between 1 and 10000");
    }
    if !(1..=8192).contains(&cache.shared_max_entry_kib) {
        out.push("cache.shared_max_entry_kib", "must be between 1 and 8192");
    }
}

fn check_telemetry(config: &Config, out: &mut Problems) {
    let Some(telemetry) = &config.telemetry else { return };
    if !(0.0..=1.0).contains(&telemetry.sample_ratio) {
        out.push("telemetry.sample_ratio", "must be between 0 and 1");
    }
    let endpoint = &telemetry.otlp_endpoint;
    let schemes = ["http://", "https://", "grpc://"];
    if !schemes.iter().any(|scheme| endpoint.starts_with(scheme)) {
        out.push("telemetry.otlp_endpoint", "must be an http://, https:// or grpc:// URL");
    }
    if telemetry.service_name.is_empty() {
        out.push("telemetry.service_name", "must not be empty");
    }
}

fn check_plugins(config: &Config, out: &mut Problems) {
    match &config.plugins {
        None if !config.plugin_chain.is_empty() => {
            out.push("plugins", "[[plugin]] entries need a [plugins] section with `dir`");
        }
        None => {}
        Some(section) => {
            out.0.extend(crate::plugin::config::validate(section, &config.plugin_chain));
        }
    }
}

fn check_base_url(key: &str, url: &str, out: &mut Problems) {
    match url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            if uri.query().is_some() {
                out.push(key, "must not have a query string");
            }
        }
        Ok(_) => out.push(key, format!("`{url}` must be an absolute http:// or https:// URL")),
        Err(e) => out.push(key, format!("`{url}` is not a URL: {e}")),
    }
}

fn check_env_name(key: &str, name: &str, out: &mut Problems) {
    if !is_env_name(name) {
        out.push(key, format!("`{name}` is not an environment variable name"));
    }
}

/// A letter or `_`, then letters, digits or `_`.
pub(super) fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_file(key: &str, path: &Path, out: &mut Problems) {
    if let Err(e) = std::fs::metadata(path) {
        out.push(key, format!("cannot read `{}`: {e}", path.display()));
    }
}
