//! Fuzz target `config_loader`: a configuration file through the loader (TOML syntax, shape,
//! unknown keys, then `validate`), as `switchyard serve` and `switchyard check` read it.
//!
//! Invariants: nothing panics; a refused file lists at least one problem, each with a key path and
//! a message; an accepted file has no problem left, and every value the server derives from it
//! (addresses, timeouts, workers, routes, plugin limits) can be computed.

use std::path::Path;

use crate::config;

/// Where relative paths in the file point: a directory that does not exist, so the checks of
/// `ca_file`, TLS files and the plugin directory read nothing of this machine's.
const BASE_DIR: &str = "/nonexistent/switchyard-fuzz";

/// Runs one input (not UTF-8: its lossy text, as an editor would show it).
pub fn config_loader(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match config::parse(&text, "fuzz.toml", Path::new(BASE_DIR)) {
        Err(error) => {
            assert!(!error.problems.is_empty(), "an error without problems");
            for problem in &error.problems {
                assert!(!problem.path.is_empty(), "a problem without a path: {problem}");
                assert!(!problem.message.is_empty(), "a problem without a message: {problem}");
            }
            assert!(!error.to_string().is_empty());
        }
        Ok(config) => {
            assert!(config::validate(&config).is_empty(), "accepted with problems");
            derived(&config);
        }
    }
}

/// The values the server computes from an accepted config.
fn derived(config: &config::Config) {
    let server = &config.server;
    assert!(server.listen_addr().is_ok() && config.admin.listen_addr().is_ok());
    let _ = (server.header_read_timeout(), server.body_read_timeout(), server.drain_timeout());
    let _ = (server.idle_timeout(), server.send_timeout(), server.http2_keepalive_interval());
    assert!(server.worker_count() >= 1);
    let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert!(names.contains(&config.routing.default.as_str()), "default route unknown");
    assert!(names.contains(&config.routing.images_upstream()), "images route unknown");
    for upstream in &config.upstreams {
        let uri: http::Uri = upstream.base_url.parse().expect("an accepted base_url parses");
        assert!(uri.host().is_some());
    }
    if let Some(section) = &config.plugins {
        let limits = section.engine_limits();
        assert!(limits.max_instances >= 1, "an accepted plugin pool has room");
        for entry in &config.plugin_chain {
            assert!(entry.config_json().starts_with('{'));
            // No way out of the plugin directory (`..`, an absolute path, a prefix).
            let file = section.dir.join(&entry.file);
            let inside = file.components().count() > section.dir.components().count();
            assert!(inside && file.starts_with(&section.dir), "{} escapes", file.display());
            let up = std::path::Component::ParentDir;
            assert!(!entry.file.components().any(|c| c == up), "{}", entry.file.display());
        }
    }
}
