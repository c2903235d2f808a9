"""A minimal Python plugin written against plugin-sdk/wit/plugin.wit with only the bindings
componentize-py generates (no SDK). The host's tests use it to prove that a Python component
(which imports WASI) loads, sees the request and that its decision takes effect, and that every
WASI capability it might reach for is denied.

on-request: a message that contains the configured `refuse` word is answered with a 403; a message
"probe:<what>" tries one capability (file, env, args, stdin, connect, resolve, stdout, sleep) and
goes on with an `x-probe` header saying whether the attempt was denied; any other request goes on with two
headers that say what the plugin saw.
"""

import json
import os
import socket
import sys
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Changes,
    Decision_Proceed,
    Decision_Respond,
    ErrorReply,
    EventAction_Pass,
    Reply_Error,
    ResponseAction_Pass,
)

REFUSE = ["forbidden"]


def proceed(headers):
    return Decision_Proceed(Changes(None, [], None, headers, [], False))


def probe_file():
    with open("/etc/hostname") as f:
        return f.read()


def probe_env():
    value = os.environ.get("PATH") or os.environ.get("HOME")
    if value is None and not os.environ:
        raise LookupError("no environment")
    return value


def probe_args():
    if len(sys.argv) <= 1 and not any(sys.argv):
        raise LookupError("no arguments")
    return sys.argv


def probe_stdin():
    data = sys.stdin.read(1) if sys.stdin is not None else ""
    if not data:
        raise EOFError("stdin is closed")
    return data


def probe_connect():
    sock = socket.create_connection(("127.0.0.1", 80), timeout=0.2)
    sock.close()


def probe_resolve():
    return socket.getaddrinfo("localhost", 80)


def probe_sleep():
    # Blocks in a WASI poll, where no epoch tick can stop it: the host's wall deadline must.
    time.sleep(60)


def probe_stdout():
    # Not a capability to deny: printed lines go to the plugin's log, capped.
    for i in range(1000):
        print("stdout line", i)
    print("to stderr", file=sys.stderr)
    return None


PROBES = {
    "file": probe_file,
    "env": probe_env,
    "args": probe_args,
    "stdin": probe_stdin,
    "connect": probe_connect,
    "resolve": probe_resolve,
    "stdout": probe_stdout,
    "sleep": probe_sleep,
}


def run_probe(what):
    probe = PROBES.get(what)
    if probe is None:
        return "unknown probe"
    try:
        probe()
    except Exception as e:  # the point: any failure inside the sandbox is a denial
        return "denied: " + type(e).__name__
    return "allowed" if what != "stdout" else "printed"


class WitWorld(wit_world.WitWorld):
    def init(self, config_json):
        config = json.loads(config_json)
        if not isinstance(config, dict):
            raise Err("config must be a table")
        if isinstance(config.get("refuse"), str):
            REFUSE[0] = config["refuse"]

    def on_request(self, req):
        for m in req.messages:
            if m.content.startswith("probe:"):
                return proceed([("x-plugin-lang", "py"), ("x-probe", run_probe(m.content[6:]))])
            if REFUSE[0] in m.content:
                host.log(host.Level.INFO, "refusing a request")
                reply = ErrorReply(403, "refused by py-hello", "policy_violation")
                return Decision_Respond(Reply_Error(reply))
        saw = "%d messages, model %s" % (len(req.messages), req.model or "-")
        return proceed([("x-plugin-lang", "py"), ("x-plugin-saw", saw)])

    def on_response(self, resp):
        return ResponseAction_Pass()

    def on_event(self, ev):
        return EventAction_Pass()

    def on_stream_end(self):
        return []
