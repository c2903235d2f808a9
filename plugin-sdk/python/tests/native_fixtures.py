"""Replays JSON fixtures against a Python plugin under plain CPython, without the proxy: the same
cases `switchyard plugin test` runs in the real host, for a quick loop while writing a plugin (and
to check the Python examples where the host is not available). The host's log and counters are
stubbed; limits, the probe and the host's decision validation are not applied here.

    PYTHONPATH=<bindings>:plugin-sdk/python:<plugin dir> python native_fixtures.py FIXTURES.json...
"""

import enum
import json
import sys
import types as pytypes

# The host functions, stubbed: only a component has the real ones.
host = pytypes.ModuleType("wit_world.imports.host")
host.log = lambda level, message: None
host.counter_add = lambda name, delta: None
host.now_ns = lambda: 0
host.Level = enum.Enum("Level", "TRACE DEBUG INFO WARN ERROR")
host.Failure = enum.Enum("Failure", "CLOSED OPEN")
host.failure_policy = lambda: host.Failure.CLOSED
sys.modules["wit_world.imports.host"] = host

import app  # noqa: E402  (the plugin)
import switchyard_plugin as sy  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from wit_world.imports import types as t  # noqa: E402


class PerCall:
    """The plugin as componentize-py calls it: every export on a new `WitWorld` object, so a
    plugin that keeps state on `self` between calls fails here as it does in the host."""

    def __getattr__(self, export: str):
        return getattr(app.WitWorld(), export)


def replay(case: dict, settings: dict) -> list:
    r = case["request"]
    req = t.LlmRequest(
        endpoint=r.get("endpoint", "/v1/chat/completions"), model=r.get("model"),
        stream=r.get("stream", "stream" in case),
        messages=[t.Message(m["role"], m["content"]) for m in r["messages"]],
        params_json=json.dumps(r.get("params", {})), tenant=r.get("tenant"),
        headers=list(r.get("headers", {}).items()), tags=list(r.get("tags", {}).items()),
    )
    plugin = PerCall()
    plugin.init(json.dumps(settings.get("config", {})))
    want, problems = case.get("expect", {}), []
    try:
        decision = plugin.on_request(req)
    except Err as e:
        return [] if want.get("outcome") == "refuse" else [f"failed: {e.value}"]
    if isinstance(decision, t.Decision_Respond):
        if want.get("outcome") != "respond":
            return [f"outcome: expected {want.get('outcome', 'proceed')}, got respond"]
        reply = decision.value
        got = (reply.value.status, reply.value.kind) if isinstance(reply, t.Reply_Error) else (200, "completion")
        return [f"reply {got} != {(want['status'], want['kind'])}"] if got != (want.get("status", got[0]), want.get("kind", got[1])) else []
    if want.get("outcome", "proceed") != "proceed":
        return [f"outcome: expected {want['outcome']}, got proceed"]
    changes = decision.value
    texts = [
        sy.apply_edits(m.content, [e for e in changes.edits if e.message == i])
        for i, m in enumerate(req.messages)
    ]
    if "messages" in want and want["messages"] != texts:
        problems.append(f"messages: expected {want['messages']}, got {texts}")
    problems += [f"{s!r} forwarded" for s in want.get("never_forwarded", []) if any(s in x for x in texts)]
    tags = dict(changes.tags) | dict(req.tags)
    problems += [f"tag {k}" for k, v in want.get("tags", {}).items() if tags.get(k) != v]
    if "watch" in want and want["watch"] != changes.watch_response:
        problems.append(f"watch: expected {want['watch']}")
    if "response" in case:
        problems += response(plugin, case["response"])
    if "stream" in case:
        problems += stream(plugin, case["stream"])
    return problems


def response(plugin, want: dict) -> list:
    choices = want["choices"]
    action = plugin.on_response(t.LlmResponse("local", None, 200, list(choices), ["stop"] * len(choices)))
    if isinstance(action, t.ResponseAction_Edit):
        choices = [sy.apply_edits(c, [e for e in action.value if e.message == i]) for i, c in enumerate(choices)]
    return [f"response: expected {want['expect']}, got {choices}"] if want.get("expect", choices) != choices else []


def stream(plugin, want: dict) -> list:
    sent, emitted = {}, []

    def emit(choice, text):
        if text:
            sent[str(choice)] = sent.get(str(choice), "") + text
            emitted.append(text)

    for seq, ev in enumerate(want["events"]):
        ev = {"text": ev} if isinstance(ev, str) else ev
        choice, text = ev.get("choice", 0), ev.get("text", "")
        action = plugin.on_event(t.StreamEvent(seq, bool(emitted), choice, text, ev.get("finish_reason")))
        if isinstance(action, t.EventAction_Pass):
            emit(choice, text)
        elif isinstance(action, t.EventAction_Replace):
            for d in action.value:
                emit(d.choice, d.text)
    for d in plugin.on_stream_end():
        emit(d.choice, d.text)
    problems = [f"stream: expected {want['expect']}, got {sent}"] if want.get("expect", sent) != sent else []
    return problems + [f"a delta contained {b!r}" for b in want.get("never_emitted", []) for d in emitted if b in d]


def main(paths: list) -> int:
    failed = 0
    for path in paths:
        doc = json.load(open(path))
        for case in doc["cases"]:
            problems = replay(case, doc.get("plugin", {}))
            failed += bool(problems)
            print(("FAIL " if problems else "ok   ") + case["name"])
            for p in problems:
                print("       " + p)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
