//! Unit tests of the cascade: each reason to escalate, and the stream hold/release/escalate steps.

use serde_json::json;

use super::*;

fn judge(params: serde_json::Value) -> Judge {
    let json = r#"{"tiers": {"local": {"upstream": "local"}, "hosted": {"upstream": "hosted"}},
                   "cascade": true, "cascade_hold_chars": 10, "cascade_min_chars": 3}"#;
    let config = RouterConfig::from_json(json).expect("valid config");
    Judge::new(&config, &params)
}

#[test]
fn whole_answers_escalate_for_each_reason() {
    let j = judge(json!({}));
    assert_eq!(j.whole(" \n", Some("stop")), Some("empty"));
    assert_eq!(j.whole("half an ans", Some("length")), Some("length"));
    assert_eq!(j.whole("I’m sorry, but I can’t do that.", Some("stop")), Some("refusal"));
    assert_eq!(j.whole("ok", Some("stop")), Some("too_short"));
    assert_eq!(j.whole("Paris is the capital.", Some("stop")), None);
    assert_eq!(j.whole("{not json", None), None, "JSON only when asked for");
}

#[test]
fn json_is_checked_when_the_request_asked_for_it() {
    let j = judge(json!({"response_format": {"type": "json_object"}}));
    assert_eq!(j.whole("here you go: {}", Some("stop")), Some("not_json"));
    assert_eq!(j.whole(r#" {"a": 1} "#, Some("stop")), None);
}

#[test]
fn refusals_count_only_at_the_opening() {
    let j = judge(json!({}));
    let late = format!("{} and I can't help with more.", "Fine answer. ".repeat(30));
    assert_eq!(j.whole(&late, Some("stop")), None);
}

#[test]
fn a_stream_is_held_until_the_window_then_released() {
    let (j, mut s) = (judge(json!({})), StreamState::default());
    assert_eq!(s.on_event(&j, 0, false, "Hello ", None), Step::Hold);
    assert_eq!(s.on_event(&j, 1, false, "there, ", None), Step::Release("Hello there, ".into()));
    assert_eq!(s.on_event(&j, 2, true, "friend", None), Step::Pass);
    assert_eq!(s.on_end(), None);
}

#[test]
fn a_stream_that_finishes_in_the_window_is_judged_whole() {
    let j = judge(json!({}));
    let mut s = StreamState::default();
    assert_eq!(s.on_event(&j, 0, false, "Hi", None), Step::Hold);
    assert_eq!(s.on_event(&j, 1, false, "", Some("length")), Step::Escalate("length"));
    assert_eq!(s.on_event(&j, 0, false, "better", None), Step::Pass, "after escalation");

    let mut s = StreamState::default();
    assert_eq!(s.on_event(&j, 0, false, "", Some("stop")), Step::Escalate("empty"));

    let mut s = StreamState::default();
    assert_eq!(s.on_event(&j, 0, false, "Yes.", Some("stop")), Step::Release("Yes.".into()));
}

#[test]
fn a_refusal_in_the_window_escalates() {
    let (j, mut s) = (judge(json!({})), StreamState::default());
    assert_eq!(s.on_event(&j, 0, false, "I cannot ", None), Step::Hold);
    assert_eq!(s.on_event(&j, 1, false, "help with that", None), Step::Escalate("refusal"));
}

#[test]
fn a_new_attempt_starts_over_and_unjudged_text_is_flushed_at_the_end() {
    let (j, mut s) = (judge(json!({})), StreamState::default());
    assert_eq!(s.on_event(&j, 0, false, "broken", None), Step::Hold);
    assert_eq!(s.on_event(&j, 0, false, "fresh", None), Step::Hold, "seq 0: a fallback");
    assert_eq!(s.on_end(), Some("fresh".into()));
}

#[test]
fn text_held_when_someone_else_commits_is_released() {
    let (j, mut s) = (judge(json!({})), StreamState::default());
    assert_eq!(s.on_event(&j, 0, false, "ab", None), Step::Hold);
    assert_eq!(s.on_event(&j, 1, true, "cd", None), Step::Release("abcd".into()));
}
