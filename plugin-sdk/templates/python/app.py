"""{{name}}: a Switchyard plugin in Python, made from the template. It refuses requests with a
blocked word, masks digits in user messages and tags what it saw. Change it to your needs; the
fixtures in fixtures/ say what it must do (`switchyard plugin test`)."""

import re

import wit_world
from wit_world.imports import types

import switchyard_plugin as sy


# What `init` read from the config. It lives in the module, not on `self`: componentize-py makes a
# new `WitWorld` object for every call, so attributes set in `init` are gone in `on_request`. The
# module lives as long as the instance: one request with the default `isolation = "fresh"`.
SETTINGS = {"blocked_words": [], "mask_digits": False}


class WitWorld(wit_world.WitWorld):
    """`init`, then `on_request` (and the response hooks only when the decision watched the
    response), each on a new object of this class: keep state in the module."""

    def init(self, config_json: str) -> None:
        config = sy.parse_config(config_json, {"blocked_words": [], "mask_digits": False})
        SETTINGS["blocked_words"] = list(config["blocked_words"])
        SETTINGS["mask_digits"] = bool(config["mask_digits"])

    def on_request(self, req: types.LlmRequest) -> types.Decision:
        if any(w in m.content for m in req.messages for w in SETTINGS["blocked_words"]):
            sy.counter_add("blocked", 1)
            sy.log("info", "request refused: blocked word")  # never log prompt text
            return sy.error(400, "policy_violation", "this request is not allowed")
        changes = sy.Changes().tag("template", "seen")
        if SETTINGS["mask_digits"]:
            for i, m in enumerate(req.messages):
                if m.role == "user":
                    # Python indices; the SDK turns them into the UTF-8 byte offsets the host wants.
                    changes.edit(sy.edit_matches(i, m.content, re.compile("[0-9]"), lambda _m: "#"))
        return sy.proceed(changes)

    def on_response(self, resp: types.LlmResponse) -> types.ResponseAction:
        return types.ResponseAction_Pass()

    def on_event(self, ev: types.StreamEvent) -> types.EventAction:
        return types.EventAction_Pass()

    def on_stream_end(self) -> list[types.Delta]:
        return []
