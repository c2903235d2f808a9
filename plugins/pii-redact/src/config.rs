//! The plugin's config (`[[plugin]] config = {...}`): parsed strictly, checked once, and turned
//! into detectors. Cheap: nothing is compiled unless `custom_patterns` is non-empty.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::detect::{Custom, Detectors, Kind, WordList};

/// What to do with what was found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `[EMAIL]`: the value is gone for good.
    Mask,
    /// `<EMAIL_1>`: numbered per type and request, restored in the answer.
    #[default]
    Pseudonymize,
    /// Refuse the request with a 400 naming the types found.
    Block,
}

/// The `config` table, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    mode: Mode,
    /// Types to detect; absent means all built-in types (and `custom` when configured).
    #[serde(default)]
    types: Option<Vec<String>>,
    #[serde(default)]
    names: Vec<String>,
    /// Find person names without a list (census statistics and context); on by default.
    #[serde(default = "yes")]
    auto_names: bool,
    #[serde(default)]
    deny_words: Vec<String>,
    #[serde(default)]
    custom_patterns: BTreeMap<String, String>,
    #[serde(default)]
    scan_answer: bool,
    /// Message roles to scan; absent means every message. `field:` entries (tool-call arguments,
    /// tool descriptions, `name`, ...) are always scanned.
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Refuse requests that carry parts the host cannot show as text (images, audio, files).
    #[serde(default)]
    refuse_binary: bool,
    /// Acknowledge running under `failure = "open"`: a redactor that fails open forwards the
    /// request unredacted whenever it fails, so without this key `init` refuses to run so.
    #[serde(default)]
    allow_fail_open: bool,
}

fn yes() -> bool {
    true
}

/// The checked config of one instance.
#[derive(Debug, Default)]
pub struct Settings {
    pub mode: Mode,
    pub detectors: Detectors,
    pub scan_answer: bool,
    pub roles: Option<Vec<String>>,
    pub refuse_binary: bool,
    pub allow_fail_open: bool,
}

impl Settings {
    /// Parse and check `json`; every problem is reported at once.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: RawConfig =
            serde_json::from_str(json).map_err(|e| format!("invalid plugin config: {e}"))?;
        let mut problems = Vec::new();
        let custom_on = raw.types.as_ref().is_none_or(|t| t.iter().any(|t| t == "custom"));
        let enabled = match &raw.types {
            None => Kind::BUILT_IN.iter().map(|(k, _)| *k).collect(),
            Some(types) => {
                for t in types {
                    if t != "custom" && !Kind::BUILT_IN.iter().any(|(_, l)| l == t) {
                        problems.push(format!("types: unknown type {t:?}"));
                    }
                }
                Kind::BUILT_IN
                    .iter()
                    .filter(|(_, l)| types.iter().any(|t| t == l))
                    .map(|(k, _)| *k)
                    .collect()
            }
        };
        let mut custom = Vec::new();
        let mut custom_labels = vec!["custom".to_string()];
        for (name, pattern) in raw.custom_patterns.iter().filter(|_| custom_on) {
            let name_ok = !name.is_empty()
                && name.len() <= 32
                && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
                && !Kind::BUILT_IN.iter().any(|(_, l)| l == name)
                && name != "custom";
            if !name_ok {
                problems.push(format!(
                    "custom_patterns: name {name:?} must be 1-32 of [a-z0-9_] and not a built-in type"
                ));
            }
            match Custom::new(name, pattern) {
                Ok(c) => custom.push(c),
                Err(e) => problems.push(e),
            }
            custom_labels.push(name.clone());
        }
        if !problems.is_empty() {
            return Err(format!("invalid plugin config: {}", problems.join("; ")));
        }
        let deny = if custom_on { WordList::new(&raw.deny_words) } else { WordList::default() };
        let detectors = Detectors {
            enabled,
            names: WordList::new(&raw.names),
            auto_names: raw.auto_names,
            deny,
            custom,
            custom_labels,
        };
        Ok(Self {
            mode: raw.mode,
            detectors,
            scan_answer: raw.scan_answer,
            roles: raw.roles,
            refuse_binary: raw.refuse_binary,
            allow_fail_open: raw.allow_fail_open,
        })
    }

    /// Whether entries of this role are scanned: every `field:` entry (text outside the messages
    /// never escapes a role filter), no `binary:` entry (it has no text), and the configured roles.
    pub fn scans(&self, role: &str) -> bool {
        if role.starts_with("field:") {
            return true;
        }
        !role.starts_with("binary:")
            && self.roles.as_ref().is_none_or(|r| r.iter().any(|x| x == role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::from_json("{}").unwrap();
        assert_eq!(s.mode, Mode::Pseudonymize);
        assert!(!s.scan_answer);
        assert_eq!(s.detectors.enabled.len(), Kind::BUILT_IN.len());
    }

    #[test]
    fn every_problem_is_reported() {
        let e = Settings::from_json(
            r#"{"types": ["email", "fax", "custom"], "custom_patterns": {"Bad Name": "(", "email": "x"}}"#,
        )
        .unwrap_err();
        assert!(e.contains("fax") && e.contains("Bad Name") && e.contains("\"email\""), "{e}");
        assert!(Settings::from_json(r#"{"mode": "shred"}"#).is_err());
        assert!(Settings::from_json(r#"{"colour": 1}"#).is_err());
    }

    #[test]
    fn types_select_detectors() {
        let s = Settings::from_json(r#"{"types": ["email"], "deny_words": ["x"]}"#).unwrap();
        assert_eq!(s.detectors.enabled, [Kind::Email]);
        assert!(s.detectors.scan("x").is_empty(), "custom is off");
    }
}
