//! Every text a request carries upstream, as the plugin `message` entries the chain reads and
//! edits, and the write-back of each edited entry into exactly the field it came from.
//!
//! Entries, in order: the endpoint's own texts (one per chat message, its text parts joined; one
//! per prompt or input string; the image prompt), then one entry per other text field, with the
//! field's JSON path in its role (`field:messages[2].tool_calls[0].function.arguments`), then one
//! empty entry per part that has no text to show (`binary:messages[1].content[0]`). So entry `i`
//! is still `messages[i]` for a plugin that only knows chat messages. docs/plugins.md lists them.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::plugin::{Message, TextEdit};
use crate::request::{ContentPart, Extra, MessageContent, RequestBody};

/// Role prefix of an entry that shows a field other than a message's content.
pub const FIELD: &str = "field:";
/// Role prefix of an empty entry for a part that cannot be shown as text (image, audio, file).
pub const BINARY: &str = "binary:";

/// One step of a field's path in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathStep {
    Key(&'static str),
    Index(usize),
}

/// How an entry's text stands for its field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// A JSON string, shown as is.
    Text,
    /// A JSON string that holds JSON (tool-call arguments). Shown re-encoded when it parses, so
    /// an escape (`\u0040`) cannot hide text from a scanner; written back as the edited string.
    JsonInString,
    /// A JSON value (a parameter schema, metadata), shown as JSON text; an edited text must parse
    /// as JSON again.
    Json,
    /// A part without text; it cannot be edited.
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    path: Vec<PathStep>,
    form: Form,
}

/// Where each entry came from: kept between showing the request and writing the edits back.
#[derive(Debug, Default)]
pub struct Layout {
    /// Entries before this index are the endpoint's own texts; `fields[i - base]` the others.
    base: usize,
    /// Chat messages with several text parts: (message, byte offset in the entry where each part
    /// after the first starts).
    joints: Vec<(usize, Vec<usize>)>,
    fields: Vec<Field>,
}

/// The plugin entries of `body`, and where each came from.
pub fn entries(body: &RequestBody) -> (Vec<Message>, Layout) {
    let mut layout = Layout::default();
    let mut out = match body {
        RequestBody::Chat(chat) => chat
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (content, joints) = content_text(m.content.as_ref());
                if !joints.is_empty() {
                    layout.joints.push((i, joints));
                }
                Message { role: m.role.clone(), content }
            })
            .collect(),
        RequestBody::Completion(c) => texts("prompt", &c.prompt),
        RequestBody::Embedding(e) => texts("input", &e.input),
        RequestBody::Image(i) => vec![Message { role: "prompt".into(), content: i.prompt.clone() }],
    };
    layout.base = out.len();
    let mut binaries = Vec::new();
    for field in candidates(body) {
        let Some(value) = slot(body, &field.path) else { continue };
        let content = match (field.form, &value) {
            (Form::Text, Value::String(s)) => s.clone(),
            // `serde_json::to_string`, not `Value`'s Display: that one goes through a formatter
            // in small writes.
            (Form::JsonInString, Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|v| serde_json::to_string(&v).ok())
                .unwrap_or_else(|| s.clone()),
            (Form::Json, Value::Null) => continue,
            (Form::Json, v) => serde_json::to_string(v).unwrap_or_default(),
            (Form::Binary, _) => {
                binaries.push(field);
                continue;
            }
            _ => continue,
        };
        out.push(Message { role: format!("{FIELD}{}", path_text(&field.path)), content });
        layout.fields.push(field);
    }
    for field in binaries {
        out.push(Message {
            role: format!("{BINARY}{}", path_text(&field.path)),
            content: String::new(),
        });
        layout.fields.push(field);
    }
    (out, layout)
}

/// The fields of `body` that may hold text, whether or not this body has them.
fn candidates(body: &RequestBody) -> Vec<Field> {
    use PathStep::{Index, Key};
    let mut out = Vec::new();
    let mut add = |path: Vec<PathStep>, form: Form| out.push(Field { path, form });
    let extra = match body {
        RequestBody::Chat(chat) => {
            for (i, m) in chat.messages.iter().enumerate() {
                let at = |rest: &[PathStep]| [&[Key("messages"), Index(i)], rest].concat();
                let has = |key: &str| m.extra.get(key).is_some();
                if has("name") {
                    add(at(&[Key("name")]), Form::Text);
                }
                if let Some(MessageContent::Parts(parts)) = &m.content {
                    for (k, part) in parts.iter().enumerate().filter(|(_, p)| p.text.is_none()) {
                        if part.extra.parse::<String>("refusal").is_some() {
                            add(at(&[Key("content"), Index(k), Key("refusal")]), Form::Text);
                        } else {
                            add(at(&[Key("content"), Index(k)]), Form::Binary);
                        }
                    }
                }
                if has("refusal") {
                    add(at(&[Key("refusal")]), Form::Text);
                }
                for j in 0..array_len(&m.extra, "tool_calls") {
                    let path =
                        at(&[Key("tool_calls"), Index(j), Key("function"), Key("arguments")]);
                    add(path, Form::JsonInString);
                }
                if has("function_call") {
                    add(at(&[Key("function_call"), Key("arguments")]), Form::JsonInString);
                }
            }
            &chat.extra
        }
        RequestBody::Completion(c) => {
            add(vec![Key("suffix")], Form::Text);
            &c.extra
        }
        RequestBody::Embedding(e) => &e.extra,
        RequestBody::Image(i) => &i.extra,
    };
    for k in 0..array_len(extra, "tools") {
        add(vec![Key("tools"), Index(k), Key("function"), Key("description")], Form::Text);
        add(vec![Key("tools"), Index(k), Key("function"), Key("parameters")], Form::Json);
    }
    for k in 0..array_len(extra, "functions") {
        add(vec![Key("functions"), Index(k), Key("description")], Form::Text);
        add(vec![Key("functions"), Index(k), Key("parameters")], Form::Json);
    }
    if let Some(prediction) = extra.parse::<Value>("prediction") {
        add(vec![Key("prediction"), Key("content")], Form::Text);
        let content = prediction.get("content").and_then(Value::as_array);
        let parts = content.map_or(0, Vec::len);
        for k in 0..parts {
            add(vec![Key("prediction"), Key("content"), Index(k), Key("text")], Form::Text);
        }
    }
    if extra.get("response_format").is_some() {
        add(vec![Key("response_format"), Key("json_schema"), Key("description")], Form::Text);
        add(vec![Key("response_format"), Key("json_schema"), Key("schema")], Form::Json);
    }
    for key in ["user", "metadata"].into_iter().filter(|k| extra.get(k).is_some()) {
        let form = if key == "user" { Form::Text } else { Form::Json };
        add(vec![Key(key)], form);
    }
    out
}

fn array_len(extra: &Extra, key: &str) -> usize {
    extra.parse::<Vec<serde::de::IgnoredAny>>(key).map_or(0, |items| items.len())
}

/// `messages[2].tool_calls[0].function.arguments`: the shape of the 400 errors' `param`.
fn path_text(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) if out.is_empty() => out.push_str(k),
            PathStep::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The value at `path`: typed fields are walked by hand, then the `extra` fields (raw JSON,
/// parsed here) and their JSON.
fn slot(body: &RequestBody, path: &[PathStep]) -> Option<Value> {
    use PathStep::{Index, Key};
    let (map, rest) = match (body, path) {
        (
            RequestBody::Chat(c),
            [Key("messages"), Index(i), Key("content"), Index(k), rest @ ..],
        ) => {
            let Some(MessageContent::Parts(parts)) = &c.messages.get(*i)?.content else {
                return None;
            };
            let part = parts.get(*k)?;
            if rest.is_empty() {
                // A binary part is addressed whole; nothing is read from it.
                return Some(Value::Null);
            }
            (&part.extra, rest)
        }
        (RequestBody::Chat(c), [Key("messages"), Index(i), rest @ ..]) => {
            (&c.messages.get(*i)?.extra, rest)
        }
        (RequestBody::Chat(c), rest) => (&c.extra, rest),
        (RequestBody::Completion(c), rest) => (&c.extra, rest),
        (RequestBody::Embedding(e), rest) => (&e.extra, rest),
        (RequestBody::Image(i), rest) => (&i.extra, rest),
    };
    let [Key(first), rest @ ..] = rest else { return None };
    let top = map.parse::<Value>(first)?;
    let mut value = &top;
    for step in rest {
        value = match step {
            Key(k) => value.get(*k)?,
            Index(i) => value.get(*i)?,
        };
    }
    Some(value.clone())
}

/// Writes `new` at `path` (as [`slot`] finds it): the `extra` field is parsed, changed and kept
/// as raw JSON again. `None` when the path is not there.
fn set_slot(body: &mut RequestBody, path: &[PathStep], new: Value) -> Option<()> {
    use PathStep::{Index, Key};
    let (map, rest) = match (body, path) {
        (
            RequestBody::Chat(c),
            [Key("messages"), Index(i), Key("content"), Index(k), rest @ ..],
        ) => {
            let Some(MessageContent::Parts(parts)) = &mut c.messages.get_mut(*i)?.content else {
                return None;
            };
            (&mut parts.get_mut(*k)?.extra, rest)
        }
        (RequestBody::Chat(c), [Key("messages"), Index(i), rest @ ..]) => {
            (&mut c.messages.get_mut(*i)?.extra, rest)
        }
        (RequestBody::Chat(c), rest) => (&mut c.extra, rest),
        (RequestBody::Completion(c), rest) => (&mut c.extra, rest),
        (RequestBody::Embedding(e), rest) => (&mut e.extra, rest),
        (RequestBody::Image(i), rest) => (&mut i.extra, rest),
    };
    let [Key(first), rest @ ..] = rest else { return None };
    let mut top = map.parse::<Value>(first)?;
    let mut value = &mut top;
    for step in rest {
        value = match step {
            Key(k) => value.get_mut(*k)?,
            Index(i) => value.get_mut(*i)?,
        };
    }
    *value = new;
    let raw = RawValue::from_string(serde_json::to_string(&top).ok()?).ok()?;
    map.insert((*first).to_string(), raw);
    Some(())
}

/// Text of a message: the string, or its text parts joined; and where each joined part after
/// the first starts.
fn content_text(content: Option<&MessageContent>) -> (String, Vec<usize>) {
    match content {
        None => (String::new(), Vec::new()),
        Some(MessageContent::Text(text)) => (text.clone(), Vec::new()),
        Some(MessageContent::Parts(parts)) => {
            let mut text = String::new();
            let mut joints = Vec::new();
            for (n, part) in parts.iter().filter_map(|p| p.text.as_deref()).enumerate() {
                if n > 0 {
                    joints.push(text.len());
                }
                text.push_str(part);
            }
            (text, joints)
        }
    }
}

/// A prompt or input field: a string, or a list whose strings are each an entry. Token-id
/// prompts carry no text and are not shown.
fn texts(role: &str, value: &Value) -> Vec<Message> {
    let one = |s: &str| Message { role: role.to_string(), content: s.to_string() };
    match value {
        Value::String(s) => vec![one(s)],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(one).collect(),
        _ => Vec::new(),
    }
}

impl Layout {
    /// Moves the joints of the multi-part messages through one plugin's edits (applied to the
    /// entries as that plugin saw them), so each text part gets back its own share of the text.
    /// An edit that spans a joint lands in the earlier part; an insertion at a joint in the later.
    pub fn follow(&mut self, edits: &[TextEdit]) {
        for (message, joints) in &mut self.joints {
            let mut mine: Vec<&TextEdit> =
                edits.iter().filter(|e| e.message as usize == *message).collect();
            if mine.is_empty() {
                continue;
            }
            mine.sort_unstable_by_key(|e| e.start);
            for joint in joints.iter_mut() {
                *joint = shifted(*joint, &mine);
            }
        }
    }
}

/// Where offset `at` lands after `edits` (sorted, disjoint).
fn shifted(at: usize, edits: &[&TextEdit]) -> usize {
    let mut delta: isize = 0;
    for e in edits {
        let (start, end, len) = (e.start as usize, e.end as usize, e.replacement.len());
        if start >= at {
            break;
        }
        if end <= at {
            delta += len as isize - (end - start) as isize;
        } else {
            return (start as isize + delta) as usize + len;
        }
    }
    (at as isize + delta) as usize
}

/// Writes the edited entries back into `body`. `Err` names an entry whose edit cannot be applied
/// (a binary part, or a schema that is no longer JSON): the request must not go on.
pub fn write_back(
    body: &mut RequestBody,
    layout: &Layout,
    entries: &[Message],
    edited: &[bool],
) -> Result<bool, String> {
    let mut any = false;
    for (i, entry) in entries.iter().enumerate() {
        if !edited.get(i).copied().unwrap_or(false) {
            continue;
        }
        any = true;
        let text = entry.content.as_str();
        let Some(field) = i.checked_sub(layout.base).and_then(|k| layout.fields.get(k)) else {
            write_own(body, layout, i, text);
            continue;
        };
        let value = match field.form {
            Form::Text | Form::JsonInString => Value::String(text.to_string()),
            Form::Json => serde_json::from_str(text)
                .map_err(|_| format!("the edited {} is not JSON", entry.role))?,
            Form::Binary => return Err(format!("{} cannot be edited", entry.role)),
        };
        if set_slot(body, &field.path, value).is_none() {
            return Err(format!("{} is gone", entry.role));
        }
    }
    Ok(any)
}

/// Entry `i` of the endpoint's own texts, edited to `text`.
fn write_own(body: &mut RequestBody, layout: &Layout, i: usize, text: &str) {
    match body {
        RequestBody::Chat(chat) => {
            let Some(message) = chat.messages.get_mut(i) else { return };
            message.content = Some(match message.content.take() {
                Some(MessageContent::Parts(parts)) => {
                    let joints = layout.joints.iter().find(|(m, _)| *m == i).map(|(_, j)| &j[..]);
                    MessageContent::Parts(split_parts(parts, text, joints.unwrap_or_default()))
                }
                _ => MessageContent::Text(text.to_string()),
            });
        }
        RequestBody::Completion(c) => write_nth_string(&mut c.prompt, i, text),
        RequestBody::Embedding(e) => write_nth_string(&mut e.input, i, text),
        RequestBody::Image(image) if i == 0 => image.prompt = text.to_string(),
        RequestBody::Image(_) => {}
    }
}

/// The text parts get their shares of `text` (cut at `joints`); other parts stay as they are.
/// Should the joints not fit the text, the whole text goes into the first text part and the
/// other text parts are dropped, so the upstream still sees exactly the edited text.
fn split_parts(parts: Vec<ContentPart>, text: &str, joints: &[usize]) -> Vec<ContentPart> {
    let count = parts.iter().filter(|p| p.text.is_some()).count();
    let mut cuts = Vec::with_capacity(count + 1);
    cuts.push(0);
    cuts.extend_from_slice(joints);
    cuts.push(text.len());
    let fits = cuts.len() == count + 1
        && cuts.windows(2).all(|w| w[0] <= w[1])
        && cuts.iter().all(|&c| text.is_char_boundary(c));
    let mut k = 0;
    parts
        .into_iter()
        .filter_map(|mut part| {
            if part.text.is_none() {
                return Some(part);
            }
            k += 1;
            let share = match (fits, k) {
                (true, _) => &text[cuts[k - 1]..cuts[k]],
                (false, 1) => text,
                (false, _) => return None,
            };
            part.text = Some(share.to_string());
            Some(part)
        })
        .collect()
}

/// The `n`-th string of a prompt or input field (see [`texts`]) becomes `text`.
fn write_nth_string(value: &mut Value, n: usize, text: &str) {
    let slot = match value {
        Value::String(_) if n == 0 => Some(value),
        Value::Array(items) => items.iter_mut().filter(|v| v.is_string()).nth(n),
        _ => None,
    };
    if let Some(slot) = slot {
        *slot = Value::String(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::request::{Endpoint, ParsedRequest};

    fn parse(endpoint: Endpoint, body: Value) -> ParsedRequest {
        ParsedRequest::parse(endpoint, Bytes::from(body.to_string())).unwrap()
    }

    fn edit(message: usize, start: usize, end: usize, replacement: &str) -> TextEdit {
        TextEdit {
            message: message as u32,
            start: start as u32,
            end: end as u32,
            replacement: replacement.into(),
        }
    }

    /// What the chain does: apply one plugin's edits to the entries, mark them edited, and let
    /// the layout follow.
    fn apply(entries: &mut [Message], edited: &mut [bool], layout: &mut Layout, es: &[TextEdit]) {
        let mut sorted = es.to_vec();
        sorted.sort_by_key(|e| std::cmp::Reverse((e.message, e.start)));
        for e in &sorted {
            let text = &mut entries[e.message as usize].content;
            text.replace_range(e.start as usize..e.end as usize, &e.replacement);
            edited[e.message as usize] = true;
        }
        layout.follow(es);
    }

    /// Replaces every `from` in every entry, as a redactor would.
    fn redact(request: &mut ParsedRequest, from: &str, to: &str) -> Vec<Message> {
        let (mut entries, mut layout) = entries(&request.body);
        let es: Vec<TextEdit> = entries
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                m.content.match_indices(from).map(move |(at, _)| edit(i, at, at + from.len(), to))
            })
            .collect();
        let mut edited = vec![false; entries.len()];
        apply(&mut entries, &mut edited, &mut layout, &es);
        request.edited |= write_back(&mut request.body, &layout, &entries, &edited).unwrap();
        entries
    }

    fn sent(request: &ParsedRequest) -> Value {
        serde_json::from_slice(&request.to_bytes().unwrap()).unwrap()
    }

    fn everything() -> Value {
        json!({
            "model": "m", "user": "ann@x.io", "metadata": {"who": "ann@x.io"},
            "messages": [
                {"role": "system", "content": "be nice", "name": "ann@x.io"},
                {"role": "user", "content": [
                    {"type": "text", "text": "mail ann@x.io "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "or ann@x.io"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "send", "arguments": "{\"to\":\"ann\\u0040x.io\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "sent to ann@x.io"}]},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "not ann@x.io"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "send",
                "description": "mail ann@x.io", "parameters": {"type": "object",
                "properties": {"to": {"type": "string", "description": "e.g. ann@x.io"}}}}}],
            "prediction": {"type": "content", "content": "ann@x.io"},
            "response_format": {"type": "json_schema", "json_schema": {"name": "r",
                "description": "for ann@x.io", "schema": {"const": "ann@x.io"}}},
            "x_vendor": {"keep": "ann@x.io"}
        })
    }

    #[test]
    fn every_text_is_an_entry_after_the_messages() {
        let request = parse(Endpoint::ChatCompletions, everything());
        let (entries, _) = entries(&request.body);
        let roles: Vec<&str> = entries.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "system",
                "user",
                "assistant",
                "tool",
                "assistant",
                "field:messages[0].name",
                "field:messages[2].tool_calls[0].function.arguments",
                "field:messages[4].content[0].refusal",
                "field:tools[0].function.description",
                "field:tools[0].function.parameters",
                "field:prediction.content",
                "field:response_format.json_schema.description",
                "field:response_format.json_schema.schema",
                "field:user",
                "field:metadata",
                "binary:messages[1].content[1]",
            ]
        );
        assert_eq!(entries[1].content, "mail ann@x.io or ann@x.io", "text parts joined");
        assert_eq!(entries[2].content, "");
        assert_eq!(entries[6].content, r#"{"to":"ann@x.io"}"#, "escapes cannot hide text");
        assert_eq!(entries[15].content, "", "binary parts show no text");
    }

    #[test]
    fn edits_land_in_exactly_their_fields() {
        let mut request = parse(Endpoint::ChatCompletions, everything());
        redact(&mut request, "ann@x.io", "<EMAIL_1>");
        assert!(request.edited);
        let out = sent(&request);
        let text = out.to_string();
        assert_eq!(text.matches("ann@x.io").count(), 1, "only the vendor field kept it: {text}");
        assert_eq!(out["x_vendor"]["keep"], "ann@x.io");
        let m = &out["messages"];
        assert_eq!(m[0]["name"], "<EMAIL_1>");
        assert_eq!(m[0]["content"], "be nice");
        assert_eq!(m[1]["content"][0]["text"], "mail <EMAIL_1> ", "each part keeps its share");
        assert_eq!(m[1]["content"][1]["image_url"]["url"], "data:image/png;base64,AAAA");
        assert_eq!(m[1]["content"][2]["text"], "or <EMAIL_1>");
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], r#"{"to":"<EMAIL_1>"}"#);
        assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "send");
        assert_eq!(m[3]["content"][0]["text"], "sent to <EMAIL_1>");
        assert_eq!(m[4]["content"][0]["refusal"], "not <EMAIL_1>");
        let f = &out["tools"][0]["function"];
        assert_eq!(f["description"], "mail <EMAIL_1>");
        assert_eq!(f["parameters"]["properties"]["to"]["description"], "e.g. <EMAIL_1>");
        assert_eq!(out["prediction"]["content"], "<EMAIL_1>");
        assert_eq!(out["response_format"]["json_schema"]["description"], "for <EMAIL_1>");
        assert_eq!(out["response_format"]["json_schema"]["schema"]["const"], "<EMAIL_1>");
        assert_eq!(out["user"], "<EMAIL_1>");
        assert_eq!(out["metadata"]["who"], "<EMAIL_1>");
    }

    #[test]
    fn untouched_fields_keep_the_original_bytes() {
        let mut request = parse(Endpoint::ChatCompletions, everything());
        redact(&mut request, "nobody@x.io", "<EMAIL_1>");
        assert!(!request.edited);
        assert_eq!(request.to_bytes().unwrap(), request.raw);
    }

    #[test]
    fn parts_follow_edits_across_and_at_joints() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "ab"}, {"type": "image_url", "image_url": {"url": "u"}},
            {"type": "text", "text": "cd"}, {"type": "text", "text": "ef"}]}]});
        let texts = |edits: &[&[TextEdit]]| {
            let mut request = parse(Endpoint::ChatCompletions, body.clone());
            let (mut entries, mut layout) = entries(&request.body);
            let mut edited = vec![false; entries.len()];
            for es in edits {
                apply(&mut entries, &mut edited, &mut layout, es);
            }
            write_back(&mut request.body, &layout, &entries, &edited).unwrap();
            request.edited = true;
            let out = sent(&request);
            let parts = out["messages"][0]["content"].as_array().unwrap().clone();
            assert_eq!(parts[1]["type"], "image_url", "the image stays in place");
            [0, 2, 3].map(|k| parts[k]["text"].as_str().unwrap().to_string())
        };
        // Across the first joint (b|c): the replacement goes into the earlier part.
        assert_eq!(texts(&[&[edit(0, 1, 3, "XY")]]), ["aXY", "d", "ef"]);
        // An insertion at a joint goes into the later part; an edit ending at one, the earlier.
        assert_eq!(texts(&[&[edit(0, 2, 2, "+"), edit(0, 3, 4, "D!")]]), ["ab", "+cD!", "ef"]);
        // Two plugins in a row: the second addresses the first one's result.
        assert_eq!(
            texts(&[&[edit(0, 0, 2, "")], &[edit(0, 0, 1, "C"), edit(0, 3, 4, "F")]]),
            ["", "Cd", "eF"]
        );
        // Spanning every part.
        assert_eq!(texts(&[&[edit(0, 1, 5, "-")]]), ["a-", "", "f"]);
    }

    #[test]
    fn edits_that_cannot_be_applied_are_errors() {
        let mut request = parse(Endpoint::ChatCompletions, everything());
        let (mut entries, mut layout) = entries(&request.body);
        let mut edited = vec![false; entries.len()];
        let schema = entries.iter().position(|m| m.role.ends_with("json_schema.schema")).unwrap();
        apply(&mut entries, &mut edited, &mut layout, &[edit(schema, 0, 1, "")]);
        let err = write_back(&mut request.body, &layout, &entries, &edited).unwrap_err();
        assert!(err.contains("is not JSON"), "{err}");
        let binary = entries.len() - 1;
        let mut edited = vec![false; entries.len()];
        apply(&mut entries, &mut edited, &mut layout, &[edit(binary, 0, 0, "x")]);
        let err = write_back(&mut request.body, &layout, &entries, &edited).unwrap_err();
        assert!(err.contains("binary:messages[1].content[1] cannot be edited"), "{err}");
    }

    #[test]
    fn other_endpoints_show_their_texts_and_user() {
        let body = json!({"model": "m", "prompt": ["a ann@x.io", [1, 2], "b"],
                          "suffix": "ann@x.io", "user": "ann@x.io"});
        let mut request = parse(Endpoint::Completions, body);
        let entries = redact(&mut request, "ann@x.io", "<E>");
        let roles: Vec<&str> = entries.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["prompt", "prompt", "field:suffix", "field:user"]);
        let out = sent(&request);
        assert_eq!(
            out,
            json!({"model": "m", "prompt": ["a <E>", [1, 2], "b"],
                               "suffix": "<E>", "user": "<E>"})
        );
        let body = json!({"model": "m", "input": "ann@x.io", "user": "ann@x.io"});
        let mut request = parse(Endpoint::Embeddings, body);
        redact(&mut request, "ann@x.io", "<E>");
        assert_eq!(sent(&request), json!({"model": "m", "input": "<E>", "user": "<E>"}));
        let body = json!({"prompt": "a cat for ann@x.io", "user": "ann@x.io", "n": 1});
        let mut request = parse(Endpoint::ImagesGenerations, body);
        redact(&mut request, "ann@x.io", "<E>");
        assert_eq!(sent(&request), json!({"prompt": "a cat for <E>", "user": "<E>", "n": 1}));
    }
}

#[cfg(test)]
mod speed {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::request::{Endpoint, ParsedRequest};

    /// `cargo test -p switchyard --lib -- --ignored --nocapture time_entries`: what building the
    /// entries costs per request (the dev profile is optimised), for a ~1.9 KB chat body without
    /// and with two tools.
    #[test]
    #[ignore]
    fn time_entries() {
        let text = "lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(10);
        let plain = json!({"model": "m", "temperature": 0, "messages": [
            {"role": "system", "content": text}, {"role": "user", "content": text},
            {"role": "assistant", "content": text}]});
        let mut tools = plain.clone();
        tools["tools"] = json!([0, 1].map(|i| json!({"type": "function", "function": {
            "name": format!("f{i}"), "description": "does a thing with a thing",
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}})));
        let mut desc_only = tools.clone();
        for t in desc_only["tools"].as_array_mut().unwrap() {
            t["function"].as_object_mut().unwrap().remove("parameters");
        }
        let cases = [("plain", plain), ("tools", tools), ("descriptions only", desc_only)];
        for (name, body) in cases {
            let request =
                ParsedRequest::parse(Endpoint::ChatCompletions, Bytes::from(body.to_string()))
                    .unwrap();
            let mut times: Vec<u128> = (0..20_000)
                .map(|_| {
                    let t = std::time::Instant::now();
                    std::hint::black_box(entries(std::hint::black_box(&request.body)));
                    t.elapsed().as_nanos()
                })
                .collect();
            times.sort_unstable();
            let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
            println!("{name}: {} bytes, entries() p50 {p50} ns, p99 {p99} ns", request.raw.len());
        }
    }
}
