//! The response phase for whole (non-streamed) answers: the choice texts, and each tool call's
//! arguments, shown to the watching plugins, and their edits written back into the JSON.

use bytes::Bytes;
use http::Response;
use serde_json::Value;

use crate::body::Body;
use crate::error::ProxyError;
use crate::plugin::{Escalation, LlmResponse, Reply, ResponseOutcome, ResponseWatch};
use crate::texts;

/// What the watching plugins made of a whole (non-streamed) response.
pub enum WholeOutcome {
    /// Send this body (the original bytes when no choice was edited).
    Send(Bytes),
    /// Respond with this instead (a plugin aborted, or a fail-closed watcher failed).
    Respond(Response<Body>),
    /// Run the request again on another upstream.
    Escalate(Escalation),
}

/// Shows a whole response to the watching plugins and applies their edits to its choice texts
/// (`message.content` for chat, `text` for completions). Nothing to do when none watches.
pub async fn watch(
    watch: &mut ResponseWatch,
    upstream: &str,
    status: u16,
    body: Bytes,
) -> WholeOutcome {
    if watch.is_empty() {
        return WholeOutcome::Send(body);
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(&body) else {
        tracing::debug!(%upstream, "response is not JSON; watchers skipped");
        return WholeOutcome::Send(body);
    };
    let (choices, finish_reasons, extras) = answer_texts(&value);
    let response = LlmResponse {
        upstream: upstream.to_string(),
        model: value["model"].as_str().map(str::to_string),
        status,
        choices,
        finish_reasons,
    };
    match watch.on_response(response).await {
        ResponseOutcome::Send { choices, edited } => {
            if !edited.contains(&true) {
                return WholeOutcome::Send(body);
            }
            let own = choices.len().saturating_sub(extras.len());
            for (k, (text, changed)) in choices.into_iter().zip(edited).enumerate() {
                if !changed {
                    continue;
                }
                match k.checked_sub(own).and_then(|x| extras.get(x)) {
                    None => {
                        if let Some(slot) = value.get_mut("choices").and_then(|c| c.get_mut(k)) {
                            set_choice_text(slot, text);
                        }
                    }
                    Some(path) => {
                        if let Some(slot) = value.pointer_mut(path) {
                            *slot = Value::String(text);
                        }
                    }
                }
            }
            WholeOutcome::Send(Bytes::from(value.to_string()))
        }
        ResponseOutcome::Abort { reply, .. } => {
            WholeOutcome::Respond(crate::wire::reply_response(Reply::Error(reply), false, None))
        }
        ResponseOutcome::Escalate { escalation, .. } => WholeOutcome::Escalate(escalation),
        ResponseOutcome::Refuse(failure) => WholeOutcome::Respond(
            ProxyError::PluginRefused {
                status: failure.http_status(),
                message: failure.public_message(),
            }
            .into_response(),
        ),
    }
}

/// The texts of a whole answer as watchers see them: each choice's text, then each tool-call's
/// `arguments` (a field entry: its finish-reason slot names the field, `field:choices[0]....`).
/// Returns the JSON pointers of those extra entries too, for writing their edits back.
fn answer_texts(value: &Value) -> (Vec<String>, Vec<Option<String>>, Vec<String>) {
    let empty = Vec::new();
    let choices = value["choices"].as_array().unwrap_or(&empty);
    let mut texts: Vec<String> =
        choices.iter().map(|c| choice_text(c).unwrap_or_default().to_string()).collect();
    let mut finish: Vec<Option<String>> =
        choices.iter().map(|c| c["finish_reason"].as_str().map(str::to_string)).collect();
    let mut pointers = Vec::new();
    for (i, choice) in choices.iter().enumerate() {
        let calls = choice["message"]["tool_calls"].as_array().unwrap_or(&empty);
        let tool_calls = calls.iter().enumerate().map(|(j, call)| {
            let at = format!("choices[{i}].message.tool_calls[{j}].function.arguments");
            let pointer = format!("/choices/{i}/message/tool_calls/{j}/function/arguments");
            (call["function"]["arguments"].as_str(), at, pointer)
        });
        let legacy = (
            choice["message"]["function_call"]["arguments"].as_str(),
            format!("choices[{i}].message.function_call.arguments"),
            format!("/choices/{i}/message/function_call/arguments"),
        );
        for (text, at, pointer) in tool_calls.chain(std::iter::once(legacy)) {
            if let Some(text) = text {
                texts.push(text.to_string());
                finish.push(Some(format!("{}{at}", texts::FIELD)));
                pointers.push(pointer);
            }
        }
    }
    (texts, finish, pointers)
}

fn choice_text(choice: &Value) -> Option<&str> {
    choice["message"]["content"].as_str().or_else(|| choice["text"].as_str())
}

/// Never through `value[key] = ...`, which panics when the upstream sent a non-object there.
fn set_choice_text(choice: &mut Value, text: String) {
    let Some(choice) = choice.as_object_mut() else { return };
    match choice.get_mut("message").and_then(Value::as_object_mut) {
        Some(message) => message.insert("content".into(), Value::String(text)),
        None => choice.insert("text".into(), Value::String(text)),
    };
}
