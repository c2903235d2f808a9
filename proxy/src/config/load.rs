//! Reading a configuration file: TOML syntax, then shape (types and unknown keys), then meaning.

use std::path::Path;

use super::{Config, ConfigError, Problem, validate};

/// Reads, parses and validates the file at `path`. Relative paths inside it are resolved against
/// the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        source_name: source_name.clone(),
        problems: vec![Problem { path: "(file)".into(), message: format!("cannot read: {e}") }],
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, &source_name, base_dir)
}

/// Parses and validates configuration text. Unknown keys are collected all at once (rather than
/// failing on the first, as `deny_unknown_fields` would), then the result is validated as a whole.
pub fn parse(text: &str, source_name: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let fail = |problems| ConfigError { source_name: source_name.to_string(), problems };
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    let deserializer = toml::Deserializer::new(text);
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(key_path(&path));
    let tracked = serde_ignored::Deserializer::new(deserializer, &mut record);
    let parsed: Result<Config, _> = serde_path_to_error::deserialize(tracked);
    problems
        .extend(unknown.into_iter().map(|path| Problem { path, message: "unknown key".into() }));
    let mut config = match parsed {
        Ok(config) => config,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let line = inner.span().map(|span| 1 + text[..span.start].matches('\n').count());
            let text = inner.message().trim().replace('\n', "; ");
            let message = match line {
                Some(line) => format!("{text} (line {line})"),
                None => text,
            };
            let path = match (path.as_str(), missing_field(inner.message())) {
                (".", Some(field)) => field.to_string(),
                (".", None) => "(file)".to_string(),
                (parent, Some(field)) => format!("{}.{field}", bracket_indices(parent)),
                (parent, None) => bracket_indices(parent),
            };
            problems.push(Problem { path, message });
            return Err(fail(problems));
        }
    };
    resolve_paths(&mut config, base_dir);
    problems.extend(validate(&config));
    if problems.is_empty() { Ok(config) } else { Err(fail(problems)) }
}

/// Makes file paths in the config relative to the config file rather than the working directory.
fn resolve_paths(config: &mut Config, base_dir: &Path) {
    let resolve = |p: &mut std::path::PathBuf| {
        if p.is_relative() {
            *p = base_dir.join(&*p);
        }
    };
    if let Some(tls) = &mut config.server.tls {
        resolve(&mut tls.cert);
        resolve(&mut tls.key);
    }
    if let Some(plugins) = &mut config.plugins {
        resolve(&mut plugins.dir);
        if let Some(cache) = &mut plugins.artifact_cache {
            resolve(cache);
        }
    }
    for upstream in &mut config.upstreams {
        if let Some(ca) = &mut upstream.ca_file {
            resolve(ca);
        }
    }
}

/// The key named by serde's "missing field `x`" message, so the problem points at it.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// `upstream.1.foo` → `upstream[1].foo`, the form users see in every other message. Built from
/// the path's parts rather than its text: a key that is empty or holds a dot is quoted, so the
/// path still says where it is (found by fuzzing: `"" = 80` was reported at an empty path).
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => {
            let plain = !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let key = if plain { key.clone() } else { format!("{key:?}") };
            match key_path(parent) {
                parent if parent.is_empty() => key,
                parent => format!("{parent}.{key}"),
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

fn bracket_indices(dotted: &str) -> String {
    let mut out = String::with_capacity(dotted.len() + 4);
    for segment in dotted.split('.').filter(|s| !s.is_empty() && *s != "?") {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_that_are_empty_or_dotted_are_quoted() {
        let base = "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:1\"\n\
                    [[upstream]]\nname = \"a\"\nbase_url = \"http://h/v1\"\n[routing]\ndefault = \"a\"\n";
        for (extra, path) in [("\"\" = 80", "routing.\"\""), ("\"a.b\" = 1", "routing.\"a.b\"")] {
            let err = parse(&format!("{base}{extra}\n"), "t", Path::new(".")).unwrap_err();
            assert_eq!(err.problems[0].path, path);
        }
        let err = parse(&format!("\"\" = 80\n{base}"), "t", Path::new(".")).unwrap_err();
        assert_eq!(err.problems[0].path, "\"\"");
    }

    #[test]
    fn indices_are_bracketed() {
        assert_eq!(bracket_indices("upstream.1.ca_file"), "upstream[1].ca_file");
        assert_eq!(bracket_indices("server.?.tls"), "server.tls");
    }
}
