//! internal-ids: a redactor a security team writes for its own identifiers. Employee ids (`EMP-`
//! and six digits) and the project code names listed in the config are replaced by numbered
//! placeholders (`<EMPLOYEE_1>`, `<PROJECT_1>`, ...) before the request leaves the proxy, and
//! restored in the answer, whole or streamed. The JavaScript and Python versions
//! (plugin-sdk/examples/internal-ids) pass the same fixtures.

use std::collections::BTreeMap;

use switchyard_plugin_sdk::{
    Changes, Config, Decision, Delta, EventAction, PlaceholderStream, Plugin, Request, Response,
    ResponseAction, StreamEvent, TextEdit, counter_add, export_plugin,
};

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    projects: Vec<String>,
}

#[derive(Default)]
struct InternalIds {
    projects: Vec<String>,
    stream: PlaceholderStream,
}

/// Not glued to an ASCII word character on either side.
fn bounded(text: &str, start: usize, end: usize) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    !word(text[..start].chars().next_back()) && !word(text[end..].chars().next())
}

fn employee_ids(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    text.match_indices("EMP-").map(|(i, _)| (i, i + 10)).filter(move |&(s, e)| {
        text.get(s + 4..e).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
            && bounded(text, s, e)
    })
}

impl InternalIds {
    /// Every id and project name in `text` as (start, end, kind), sorted, without overlaps.
    fn find_all(&self, text: &str) -> Vec<(usize, usize, &'static str)> {
        let mut hits: Vec<_> = employee_ids(text).map(|(s, e)| (s, e, "EMPLOYEE")).collect();
        for name in &self.projects {
            for (i, _) in text.match_indices(name.as_str()) {
                if bounded(text, i, i + name.len()) {
                    hits.push((i, i + name.len(), "PROJECT"));
                }
            }
        }
        hits.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
        let mut out: Vec<(usize, usize, &'static str)> = Vec::new();
        for h in hits {
            if out.last().is_none_or(|last| h.0 >= last.1) {
                out.push(h);
            }
        }
        out
    }
}

impl Plugin for InternalIds {
    fn init(&mut self, config: Config) -> Result<(), String> {
        let settings: Settings = config.parse()?;
        if settings.projects.iter().any(String::is_empty) {
            return Err("invalid plugin config: projects must be non-empty strings".into());
        }
        self.projects = settings.projects;
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<Decision, String> {
        let mut issued: BTreeMap<String, String> = BTreeMap::new(); // value -> placeholder
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut changes = Changes::new();
        let mut redacted = 0u64;
        for (i, m) in req.messages.iter().enumerate() {
            if m.role.starts_with("binary:") {
                continue; // parts without text
            }
            for (start, end, kind) in self.find_all(&m.content) {
                let value = &m.content[start..end];
                let placeholder = issued.entry(value.to_string()).or_insert_with(|| {
                    let n = counts.entry(kind).or_default();
                    *n += 1;
                    format!("<{kind}_{n}>")
                });
                changes = changes.edit(TextEdit::new(i, start..end, placeholder));
                redacted += 1;
            }
        }
        if redacted == 0 {
            return Ok(Decision::Proceed(changes));
        }
        counter_add("redacted", redacted);
        self.stream = PlaceholderStream::new(issued.into_iter().map(|(v, p)| (p, v)));
        let changes = changes.tag("internal-ids.redacted", &redacted.to_string()).watch_response();
        Ok(Decision::Proceed(changes))
    }

    fn on_response(&mut self, resp: Response) -> ResponseAction {
        let edits: Vec<TextEdit> = resp
            .choices
            .iter()
            .enumerate()
            .filter_map(|(i, text)| {
                let restored = self.stream.restore(text);
                (restored != *text).then(|| TextEdit::new(i, 0..text.len(), &restored))
            })
            .collect();
        if edits.is_empty() { ResponseAction::Pass } else { ResponseAction::Edit(edits) }
    }

    fn on_event(&mut self, ev: StreamEvent) -> EventAction {
        self.stream.on_event(&ev)
    }

    fn on_stream_end(&mut self) -> Vec<Delta> {
        self.stream.end()
    }
}

export_plugin!(InternalIds);
