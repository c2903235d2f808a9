"""Switchyard plugin SDK for Python: typed helpers over the bindings that componentize-py
generates from plugin-sdk/wit/plugin.wit (world `plugin`, module `wit_world`).

Decision builders, text edits by Python string index (code points) converted to the UTF-8 byte
offsets that `text-edit` takes, and a stream holder that never releases text that could still be
the start of a placeholder. The host functions (log, counters, clock) are wrapped at the end; the
rest runs under plain CPython too, which is how its tests run.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Iterable, Mapping, Optional

from wit_world.imports import types as t

# Stream events whose `choice` has this bit set carry a tool call's arguments (see plugin.wit).
TOOL_CALL_CHOICE = 1 << 31


class Changes:
    """What to change before the request goes on; `build()` gives the WIT `changes` record."""

    def __init__(self) -> None:
        self.value = t.Changes(
            route=None, edits=[], cache=None, add_headers=[], tags=[], watch_response=False
        )

    def route(self, upstream: str, model: Optional[str] = None, fallbacks: Iterable[str] = ()) -> "Changes":
        self.value.route = t.Route(upstream=upstream, model=model, fallbacks=list(fallbacks))
        return self

    def edit(self, edits) -> "Changes":
        """Add one `text-edit` or a list of them (see `text_edit`, `edit_matches`)."""
        self.value.edits.extend(edits if isinstance(edits, list) else [edits])
        return self

    def no_cache(self) -> "Changes":
        self.value.cache = t.CacheDirective_NoCache()
        return self

    def cache(self, key: str, ttl_seconds: int) -> "Changes":
        self.value.cache = t.CacheDirective_Store(t.CacheEntry(key=key, ttl_seconds=ttl_seconds))
        return self

    def header(self, name: str, value: str) -> "Changes":
        self.value.add_headers.append((name, value))
        return self

    def tag(self, key: str, value: str) -> "Changes":
        self.value.tags.append((key, value))
        return self

    def watch_response(self) -> "Changes":
        self.value.watch_response = True
        return self

    def build(self) -> t.Changes:
        return self.value


def proceed(changes: Optional[Changes] = None) -> t.Decision:
    """Proceed with `changes` (none: change nothing)."""
    return t.Decision_Proceed((changes or Changes()).build())


def error_reply(status: int, kind: str, message: str) -> t.ErrorReply:
    return t.ErrorReply(status=status, message=message, kind=kind)


def error(status: int, kind: str, message: str) -> t.Decision:
    """Answer now with an OpenAI-shaped error (status 400..=599); nothing is forwarded."""
    return t.Decision_Respond(t.Reply_Error(error_reply(status, kind, message)))


def completion(text: str) -> t.Decision:
    """Answer now with a complete assistant message."""
    return t.Decision_Respond(t.Reply_Completion(text))


def fail(message: str):
    """Make `init` or `on_request` fail (the plugin's failure policy answers)."""
    from componentize_py_types import Err

    raise Err(message)


def parse_config(config_json: str, defaults: Mapping[str, object]) -> dict:
    """The config table merged over `defaults`; unknown keys and bad JSON fail `init`."""
    try:
        value = json.loads(config_json)
    except ValueError as e:
        fail(f"invalid plugin config: {e}")
    if not isinstance(value, dict):
        fail("invalid plugin config: not a table")
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        fail(f"invalid plugin config: unknown key {unknown[0]}")
    return {**defaults, **value}


def is_turn(role: str) -> bool:
    """Whether a request entry is conversation text (not a `field:` or `binary:` entry)."""
    return not role.startswith("field:") and not role.startswith("binary:")


def is_probe(req: t.LlmRequest) -> bool:
    """Whether this is the proxy's probe request, sent through every new plugin version."""
    return any(k == "switchyard.probe" for k, _ in req.tags)


def utf8_offset(text: str, index: int) -> int:
    """The UTF-8 byte offset of Python string index `index` (code points) in `text`."""
    if not 0 <= index <= len(text):
        raise IndexError(f"index {index} is outside the text (length {len(text)})")
    return len(text[:index].encode("utf-8", "surrogatepass"))


def text_edit(message: int, text: str, start: int, end: int, replacement: str) -> t.TextEdit:
    """Replace `text[start:end]` of message (or choice) `message` with `replacement`."""
    if end < start:
        raise IndexError(f"edit end {end} is before its start {start}")
    return t.TextEdit(
        message=message,
        start=utf8_offset(text, start),
        end=utf8_offset(text, end),
        replacement=replacement,
    )


def edit_matches(
    message: int, text: str, pattern: "re.Pattern[str]", replace: Callable[[re.Match], Optional[str]]
) -> list:
    """Edits for every match of `pattern` in `text`; `replace(match)` returns the replacement or
    None to leave that match alone. Sorted and disjoint, as the host wants them."""
    edits = []
    for m in pattern.finditer(text):
        if m.end() == m.start():
            continue
        r = replace(m)
        if r is not None:
            edits.append(text_edit(message, text, m.start(), m.end(), r))
    return edits


def apply_edits(text: str, edits: Iterable[t.TextEdit]) -> str:
    """Apply edits (UTF-8 offsets) to `text`, as the host does: for tests and previews."""
    data = text.encode("utf-8")
    out, last = b"", 0
    for e in sorted(edits, key=lambda e: e.start):
        out += data[last : e.start] + e.replacement.encode("utf-8")
        last = e.end
    return (out + data[last:]).decode("utf-8")


# Response-phase actions.
def response_pass() -> t.ResponseAction:
    return t.ResponseAction_Pass()


def response_edit(edits: list) -> t.ResponseAction:
    return t.ResponseAction_Edit(edits)


def event_pass() -> t.EventAction:
    return t.EventAction_Pass()


def event_replace(deltas: list) -> t.EventAction:
    """Send these deltas instead; an empty list sends nothing now."""
    return t.EventAction_Replace(deltas)


def event_abort(status: int, kind: str, message: str) -> t.EventAction:
    return t.EventAction_Abort(error_reply(status, kind, message))


class PlaceholderStream:
    """Stream text held back per choice until it can no longer be the start of a placeholder,
    with every complete placeholder replaced by its original. A placeholder split over events
    ("<EM", "P_1> ok") is restored whole; text that merely looks like one starts ("a < b") is
    released as soon as the next character rules it out.

    `placeholders`: placeholder text -> what it stands for.
    """

    def __init__(self, placeholders: Mapping[str, str]) -> None:
        self.placeholders = dict(placeholders)
        self.pending: dict = {}

    def push(self, choice: int, text: str, finished: bool = False) -> str:
        """Take one event's text; returns what is safe to send now (restored). `finished`: no
        more text comes for this choice."""
        pending = self.pending.get(choice, "") + text
        cut = len(pending) if finished else self.safe_length(pending)
        self.pending[choice] = pending[cut:]
        return self.restore(pending[:cut])

    def on_event(self, ev: t.StreamEvent) -> t.EventAction:
        """The event action for `ev`: pass when nothing changed."""
        untouched = not self.pending.get(ev.choice)
        out = self.push(ev.choice, ev.text, ev.finish_reason is not None)
        if untouched and not self.pending.get(ev.choice) and out == ev.text:
            return event_pass()
        return event_replace([t.Delta(choice=ev.choice, text=out)] if out else [])

    def end(self) -> list:
        """The stream ended: every choice's held text, restored, as deltas for `on_stream_end`."""
        out = [
            t.Delta(choice=c, text=self.restore(text))
            for c, text in sorted(self.pending.items())
            if text
        ]
        self.pending.clear()
        return out

    def restore(self, text: str) -> str:
        if not self.placeholders:
            return text
        out, i = [], 0
        while i < len(text):
            hit = max(
                (p for p in self.placeholders if p and text.startswith(p, i)), key=len, default=None
            )
            if hit is None:
                out.append(text[i])
                i += 1
            else:
                out.append(self.placeholders[hit])
                i += len(hit)
        return "".join(out)

    def safe_length(self, pending: str) -> int:
        """The length of the prefix of `pending` that no later text can turn into a placeholder."""
        longest = max((len(p) for p in self.placeholders), default=0)
        for i in range(max(0, len(pending) - longest + 1), len(pending)):
            tail = pending[i:]
            if any(len(p) > len(tail) and p.startswith(tail) for p in self.placeholders):
                return i
        return len(pending)


# The host's functions. Imported when called: plain CPython (the tests) has no host.
def log(level: str, message: str) -> None:
    """Log a line under this plugin's name ('trace' ... 'error'). Never log prompt text."""
    from wit_world.imports import host

    host.log(host.Level[level.upper()], message)


def counter_add(name: str, delta: int = 1) -> None:
    from wit_world.imports import host

    host.counter_add(name, delta)


def now_ns() -> int:
    from wit_world.imports import host

    return host.now_ns()


def fails_open() -> bool:
    from wit_world.imports import host

    return host.failure_policy() == host.Failure.OPEN
