//! The fixture format: recorded requests, responses and streams with the decisions a plugin must
//! make, as JSON. One file holds the plugin's settings and its cases; the same files test a
//! plugin whatever language it is written in (docs/plugins.md, "Fixtures").

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::plugin::{FailurePolicy, Isolation};

/// One fixture file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// What the file tests, for people.
    #[serde(default)]
    pub description: String,
    /// The `[[plugin]]` settings the cases run with.
    #[serde(default)]
    pub plugin: PluginSettings,
    /// Upstream names that routes and escalations may use.
    #[serde(default = "default_upstreams")]
    pub upstreams: Vec<String>,
    pub cases: Vec<Case>,
}

/// The `[[plugin]]` entry the cases run under (name and file come from the harness).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    #[serde(default = "closed")]
    pub failure: FailurePolicy,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    pub timeout_ms: Option<u64>,
    pub memory_mib: Option<u32>,
    #[serde(default)]
    pub isolation: Isolation,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            failure: FailurePolicy::Closed,
            config: serde_json::Map::new(),
            timeout_ms: None,
            memory_mib: None,
            isolation: Isolation::Fresh,
        }
    }
}

/// One recorded request, what the chain must decide, and optionally the answer it then sees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: RequestFixture,
    #[serde(default)]
    pub expect: RequestExpect,
    /// A whole (non-streamed) answer shown to the plugin when it watches the response.
    pub response: Option<ResponseFixture>,
    /// A streamed answer, event by event.
    pub stream: Option<StreamFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFixture {
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    pub model: Option<String>,
    /// Defaults to true when the case has a `stream`.
    pub stream: Option<bool>,
    pub messages: Vec<MessageFixture>,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    pub tenant: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageFixture {
    pub role: String,
    pub content: String,
}

/// What the request phase must come to. Every field is optional: only what is given is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestExpect {
    /// "proceed" (the default), "respond" (the plugin answered) or "refuse" (it failed closed).
    #[serde(default)]
    pub outcome: Outcome,
    /// Every message's text after the edits, in order.
    pub messages: Option<Vec<String>>,
    /// Strings that no message may contain after the edits (what must never leave).
    #[serde(default)]
    pub never_forwarded: Vec<String>,
    /// The upstream the route names (`null`: no route set; absent: not checked).
    #[serde(default, deserialize_with = "present")]
    pub route: Option<Option<String>>,
    /// Tags that must be set, with these values.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Headers added upstream, with these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// "default", "no-cache" or "store".
    pub cache: Option<String>,
    /// Whether the plugin asked to watch the response.
    pub watch: Option<bool>,
    /// For "respond" and "refuse": the HTTP status.
    pub status: Option<u16>,
    /// For "respond" with an error: its `kind`. For a completion: "completion".
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Proceed,
    Respond,
    Refuse,
}

/// A whole answer and what the watchers must make of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFixture {
    #[serde(default = "default_upstream")]
    pub upstream: String,
    pub choices: Vec<String>,
    /// The choice texts the client must get (omit to only check `outcome`).
    pub expect: Option<Vec<String>>,
    /// "send" (default), "abort", "escalate" or "refuse".
    #[serde(default = "send")]
    pub outcome: String,
}

/// A streamed answer and what the client must receive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFixture {
    pub events: Vec<EventFixture>,
    /// Per choice, the whole text the client receives (every emitted delta, joined).
    pub expect: Option<BTreeMap<u32, String>>,
    /// "complete" (default), "abort", "escalate" or "refuse".
    #[serde(default = "complete")]
    pub outcome: String,
    /// Strings that no single emitted delta may contain (a placeholder half-released, say).
    #[serde(default)]
    pub never_emitted: Vec<String>,
}

/// One SSE event: just its text (choice 0), or the event in full.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EventFixture {
    Text(String),
    Full {
        #[serde(default)]
        choice: u32,
        #[serde(default)]
        text: String,
        finish_reason: Option<String>,
    },
}

impl EventFixture {
    pub fn parts(&self) -> (u32, &str, Option<&str>) {
        match self {
            Self::Text(t) => (0, t, None),
            Self::Full { choice, text, finish_reason } => (*choice, text, finish_reason.as_deref()),
        }
    }
}

/// Read a fixture file, or every `*.json` of a directory (in name order).
pub fn load(path: &Path) -> Result<Vec<(String, FixtureFile)>, String> {
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(format!("{}: no *.json fixtures", path.display()));
    }
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let file = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            Ok((f.display().to_string(), file))
        })
        .collect()
}

/// A field that is present, `null` included, is `Some`: tells `null` from absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

fn default_upstreams() -> Vec<String> {
    vec!["local".into(), "hosted".into()]
}
fn default_endpoint() -> String {
    "/v1/chat/completions".into()
}
fn default_upstream() -> String {
    "local".into()
}
fn closed() -> FailurePolicy {
    FailurePolicy::Closed
}
fn send() -> String {
    "send".into()
}
fn complete() -> String {
    "complete".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_route_is_checked_and_an_absent_one_is_not() {
        let null: RequestExpect = serde_json::from_str(r#"{"route": null}"#).expect("parse");
        assert_eq!(null.route, Some(None));
        let absent: RequestExpect = serde_json::from_str("{}").expect("parse");
        assert_eq!(absent.route, None);
        let set: RequestExpect = serde_json::from_str(r#"{"route": "hosted"}"#).expect("parse");
        assert_eq!(set.route, Some(Some("hosted".into())));
    }

    #[test]
    fn events_are_text_or_whole_and_unknown_keys_are_refused() {
        let s: StreamFixture =
            serde_json::from_str(r#"{"events": ["a", {"choice": 2, "text": "b", "finish_reason": "stop"}], "expect": {"0": "a"}}"#)
                .expect("parse");
        assert_eq!(s.events[0].parts(), (0, "a", None));
        assert_eq!(s.events[1].parts(), (2, "b", Some("stop")));
        assert_eq!(s.expect.expect("expect")[&0], "a");
        let bad = serde_json::from_str::<Case>(
            r#"{"name": "x", "request": {"messages": []}, "expct": {}}"#,
        );
        assert!(bad.expect_err("typo").to_string().contains("unknown field"));
    }
}
