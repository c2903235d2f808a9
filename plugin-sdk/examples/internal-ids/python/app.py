"""internal-ids: a redactor a security team writes for its own identifiers. Employee ids (EMP- and
six digits) and the project code names listed in the config are replaced by numbered placeholders
(<EMPLOYEE_1>, <PROJECT_1>, ...) before the request leaves the proxy, and restored in the answer,
whole or streamed (a placeholder split over events is restored whole and never sent in halves).
The Rust (plugins/internal-ids) and JavaScript versions pass the same fixtures."""

import re

import wit_world
from wit_world.imports import types

import switchyard_plugin as sy

EMPLOYEE = re.compile("EMP-[0-9]{6}")
WORD = re.compile("[A-Za-z0-9_]")


def bounded(text: str, start: int, end: int) -> bool:
    """Not glued to an ASCII word character on either side."""
    before = start > 0 and WORD.match(text[start - 1])
    after = end < len(text) and WORD.match(text[end])
    return not before and not after


class State:
    """What one instance keeps between calls: the configured project names, and the placeholders
    to restore in the answer. In the module, not on `self`: componentize-py makes a new
    `WitWorld` object for every call."""

    def __init__(self) -> None:
        self.projects: list = []
        self.stream = sy.PlaceholderStream({})


STATE = State()


class WitWorld(wit_world.WitWorld):
    def init(self, config_json: str) -> None:
        config = sy.parse_config(config_json, {"projects": []})
        projects = config["projects"]
        if not isinstance(projects, list) or not all(isinstance(p, str) and p for p in projects):
            sy.fail("invalid plugin config: projects must be a list of non-empty strings")
        STATE.projects = projects
        STATE.stream = sy.PlaceholderStream({})

    def find_all(self, text: str) -> list:
        """Every employee id and project name in `text`, sorted, without overlaps."""
        hits = [(m.start(), m.end(), "EMPLOYEE") for m in EMPLOYEE.finditer(text) if bounded(text, m.start(), m.end())]
        for name in STATE.projects:
            i = text.find(name)
            while i >= 0:
                if bounded(text, i, i + len(name)):
                    hits.append((i, i + len(name), "PROJECT"))
                i = text.find(name, i + 1)
        hits.sort(key=lambda h: (h[0], -h[1]))
        out = []
        for h in hits:
            if not out or h[0] >= out[-1][1]:
                out.append(h)
        return out

    def on_request(self, req: types.LlmRequest) -> types.Decision:
        issued: dict = {}  # value -> placeholder
        counts = {"EMPLOYEE": 0, "PROJECT": 0}
        changes = sy.Changes()
        redacted = 0
        for i, m in enumerate(req.messages):
            if m.role.startswith("binary:"):
                continue  # parts without text
            for start, end, kind in self.find_all(m.content):
                value = m.content[start:end]
                if value not in issued:
                    counts[kind] += 1
                    issued[value] = f"<{kind}_{counts[kind]}>"
                changes.edit(sy.text_edit(i, m.content, start, end, issued[value]))
                redacted += 1
        if redacted == 0:
            return sy.proceed(changes)
        sy.counter_add("redacted", redacted)
        STATE.stream = sy.PlaceholderStream({p: v for v, p in issued.items()})
        return sy.proceed(changes.tag("internal-ids.redacted", str(redacted)).watch_response())

    def on_response(self, resp: types.LlmResponse) -> types.ResponseAction:
        edits = []
        for i, text in enumerate(resp.choices):
            restored = STATE.stream.restore(text)
            if restored != text:
                edits.append(sy.text_edit(i, text, 0, len(text), restored))
        return sy.response_edit(edits) if edits else sy.response_pass()

    def on_event(self, ev: types.StreamEvent) -> types.EventAction:
        return STATE.stream.on_event(ev)

    def on_stream_end(self) -> list[types.Delta]:
        return STATE.stream.end()
