#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from real shapes: OpenAI request bodies,
SSE streams as OpenAI-compatible servers send them, plugin decisions, and the shipped and golden
configuration files. Run from the repository root: `python3 fuzz/make_seeds.py`. The files are
committed; libFuzzer's own finds go to a work directory (scripts/fuzz.sh), not here.

Input formats (see proxy/src/fuzzing/*.rs): request_parser and sse_relay inputs start with one
selector byte (endpoint; chunk size and event cap); decision inputs are the line format of
proxy/src/fuzzing/decision.rs; config_loader inputs are TOML.
"""
import glob
import json
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- request_parser: selector 0 chat, 1 completions, 2 embeddings, 3 images -------------------
user = {"role": "user", "content": "Say hi"}
chat = {
    "basic": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be terse."}, user]},
    "params": {
        "model": "m", "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2,
        "top_p": 1, "n": 1, "max_tokens": 64, "seed": 42, "stop": ["\n\n", "END"],
        "logit_bias": {"50256": -100}, "x_vendor": {"a": [1, 2.5, None, True]}, "messages": [user],
    },
    "stop_string": {"model": "m", "stop": "END", "temperature": None, "messages": [user]},
    "multipart": {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image? Mail ann@example.com"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-abc", "filename": "a.pdf"}},
        {"type": "text", "text": " and this part."},
    ]}]},
    "tools": {
        "model": "gpt-4o", "tool_choice": "auto", "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "functions": [{"name": "legacy", "description": "old style", "parameters": {"type": "object"}}],
        "messages": [
            {"role": "user", "name": "ann", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}], "refusal": "I can't."},
            {"role": "assistant", "content": None, "function_call": {"name": "legacy", "arguments": "{\"x\":1}"}},
        ],
        "prediction": {"type": "content", "content": [{"type": "text", "text": "predicted"}]},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "description": "a schema",
                            "schema": {"type": "object"}}},
        "user": "user-1234", "metadata": {"k": "v"},
    },
    "prediction_string": {"model": "m", "prediction": {"type": "content", "content": "text"}, "messages": [user]},
}
for name, body in chat.items():
    write("request_parser", f"chat-{name}", "0" + j(body))
write("request_parser", "chat-escapes", '0{"model":"m","messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00 ann\\u0040example.com \\"q\\" \\n"}]}')
write("request_parser", "chat-arguments-not-json", '0{"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{not json"}}]}]}')
# Found by fuzzing: a client role in the host's entry namespace (a redactor skipped its text).
write("request_parser", "crash-reserved-role", '0{"model":"m","messages":[{"role":"binary:x","content":"ann@example.com"}]}')
# Found by fuzzing: a float out of u64 range moved by one ULP when re-serialised.
write("request_parser", "crash-huge-token-id", '2{"model":"m","input":[[101,2023,118446744073709551615],[7]]}')
write("request_parser", "chat-pretty", '0{\n  "model" : "m",\n  "messages" : [ { "role" : "user" , "content" : "hi" } ],\n  "x" : { "y" : [ 1 , 2 ] }\n}\n')
for name, body in {
    "bad-type": '{"model":"m","messages":[{"role":5}]}',
    "bad-truncated": '{"model":"m",',
    "bad-missing": '{"messages":[]}',
    "bad-trailing": '{"model":"m","messages":[]} trailing',
    "bad-duplicate": '{"model":"m","model":"n","messages":[]}',
    "bad-not-object": '[1,2,3]',
    "bad-number": '{"model":"m","messages":[],"n":-1,"max_tokens":1e400}',
}.items():
    write("request_parser", f"chat-{name}", "0" + body)
completions = {
    "text": {"model": "m", "prompt": "Once upon", "suffix": "end", "max_tokens": 5, "stream": True, "logprobs": 2},
    "tokens": {"model": "m", "prompt": [1, 2, 3, 50256]},
    "token-batches": {"model": "m", "prompt": [[1, 2], [3]]},
    "strings": {"model": "m", "prompt": ["a", "b"], "user": "u-1"},
}
for name, body in completions.items():
    write("request_parser", f"completions-{name}", "1" + j(body))
embeddings = {
    "text": {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "float", "dimensions": 256},
    "tokens": {"model": "m", "input": [[101, 2023, 102], [7]]},
    "strings": {"model": "m", "input": ["a", "b"], "user": "u"},
}
for name, body in embeddings.items():
    write("request_parser", f"embeddings-{name}", "2" + j(body))
write("request_parser", "images-full", "3" + j({"model": "dall-e-3", "prompt": "a red fox", "n": 1,
      "size": "1024x1024", "response_format": "b64_json", "user": "u"}))
write("request_parser", "images-minimal", '3{"prompt":"x"}')

# --- sse_relay: selector low 3 bits = chunk size (1,2,3,7,16,64,512,whole), bit 3 = 256-byte cap --


def chunk(content=None, finish=None, index=0, role=None, extra=None, text=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    if text is not None:
        choice = {"index": index, "text": text, "finish_reason": finish}
    out = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    out.update(extra or {})
    return out


def sse(*events, nl="\n"):
    out = ""
    for e in events:
        data = e if isinstance(e, str) else j(e)
        out += f"data: {data}{nl}{nl}"
    return out


usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
         "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
streams = {
    "plain": sse(chunk("", role="assistant"), chunk("Hello"), chunk(" world"), chunk(finish="stop"), "[DONE]"),
    "restore": sse(chunk("", role="assistant"), chunk("Sure, <EMA"), chunk("IL_1> and <CARD_1>"), chunk(".\n"),
                   chunk(finish="stop"), usage, "[DONE]"),
    "planted": sse(chunk("Contact ann@exa"), chunk("mple.com or card 4111 1111 "), chunk("1111 1111\nok"),
                   chunk(finish="stop"), "[DONE]"),
    "planted-no-newline": sse(chunk("ann@example.com"), "[DONE]"),
    "deny-words": sse(chunk("", role="assistant"), chunk("Project Blue"), chunk("bird and KESTR"), chunk("EL.\nNext: "),
                      chunk("bluebird"), chunk(finish="stop"), "[DONE]"),
    "deny-words-choices": sse({"choices": [{"index": 0, "delta": {"content": "blue"}, "finish_reason": None},
                                           {"index": 1, "delta": {"content": "kestrel "}, "finish_reason": None}]},
                              {"choices": [{"index": 0, "delta": {"content": "bird"}, "finish_reason": "stop"}]},
                              "[DONE]"),
    "crlf": sse(chunk("line one\r\n"), chunk("ann@example.com"), chunk(finish="length"), "[DONE]", nl="\r\n"),
    "cr": sse(chunk("a"), chunk("b"), "[DONE]", nl="\r"),
    "comments-fields": ": keep-alive\n\nevent: message\nid: 7\nretry: 1000\ndata: " + j(chunk("hi")) +
                       "\n\n:comment\ndata: " + j(chunk(finish="stop")) + "\n\ndata: [DONE]\n\n",
    "multiline-data": "data: {\"choices\":\ndata: [{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n",
    "bom": "\ufeff" + sse(chunk("bom"), "[DONE]"),
    "error-first": sse({"error": {"message": "overloaded", "type": "server_error"}}, "[DONE]"),
    "error-after": sse(chunk("partial"), {"error": {"message": "boom"}}),
    "no-done": sse(chunk("cut"), chunk(" off")),
    "empty": "",
    "two-choices": sse({"choices": [{"index": 0, "delta": {"content": "ann@"}, "finish_reason": None},
                                    {"index": 1, "delta": {"content": "x"}, "finish_reason": None}]},
                       {"choices": [{"index": 0, "delta": {"content": "example.com"}, "finish_reason": "stop"},
                                    {"index": 1, "delta": {}, "finish_reason": "stop"}]}, "[DONE]"),
    "completions": sse(chunk(text="Once <EMAIL_1>"), chunk(text=" ann@example.com", finish="stop"), "[DONE]"),
    "tool-calls": sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1",
          "type": "function", "function": {"name": "send", "arguments": ""}}]}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"to\":\"<EMAIL"}}]},
          "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "_1>\"}"}}]},
          "finish_reason": "tool_calls"}]},
        "[DONE]"),
    "odd-shapes": sse({"choices": {"0": 1}}, {"choices": [{"index": -1, "delta": {"content": 5}}]},
                      {"choices": [{"index": 4294967296, "delta": {"content": "big"}}]}, "not json", "[DONE]"),
    "huge-event": "data: " + "x" * 300 + "\n\n" + sse("[DONE]"),
}
selectors = "01234567"
for k, (name, body) in enumerate(streams.items()):
    write("sse_relay", f"{name}-{k % 8}", selectors[k % 8] + body)
    write("sse_relay", f"{name}-whole", "7" + body)
write("sse_relay", "plain-capped", "?" + streams["plain"])
# Found by fuzzing: events after [DONE] were relayed and shown to the plugin after its stream end.
write("sse_relay", "crash-after-done", "7" + sse({"choices": [{"index": 0, "delta": {"content": "blue"}}]}, "[DONE]",
      {"choices": [{"index": 0, "delta": {"content": "bird"}, "finish_reason": "stop"}]}, "[DONE]"))
# Found by fuzzing: text for a choice after its finish reason passed the redactor's flushed state.
write("sse_relay", "crash-text-after-finish", "7" + sse({"choices": [{"index": 0, "delta": {"content": "blue"}}]},
      {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
      {"choices": [{"index": 0, "delta": {"content": "bird"}, "finish_reason": "stop"}]}, "[DONE]"))
# Found by fuzzing: an address right after a non-ASCII character was not masked.
write("sse_relay", "crash-email-after-non-ascii", "7" + sse(chunk(text="Once <EMAIL_1>"), chunk(text="\ufffdann@example.com", finish="stop"), "[DONE]"))
# Found by fuzzing: `[DONE]` after an empty data line ended the stream here but not for clients.
write("sse_relay", "crash-done-after-empty-data", "7" + sse(chunk("bom"))[:-1] + "\ndata\ndata: [DONE]\n\n")

# --- decision: the line format of proxy/src/fuzzing/decision.rs ----------------------------------
texts = "text Hello, my email is ann@example.com and I live in Caf\\xc3\\xa9 street\ntext second <EMAIL_1>\n"
ups = "upstream local\nupstream hosted\n"
decisions = {
    "redact": texts + ups + "edit 0 19 34 <EMAIL_1>\nwatch\ntag pii email\n",
    "route": texts + ups + "route hosted model=gpt-4o-mini fallbacks=local\nheader x-tier best\n",
    "cache": texts + ups + "cache 300 m|Hello|0.0\n",
    "nocache": texts + ups + "nocache\nedit 1 0 0 >\n",
    "adjacent": texts + ups + "edit 0 0 5 Hi\nedit 0 5 6 !\nedit 0 6 6 +\n",
    "overlap": texts + ups + "edit 0 0 5 a\nedit 0 3 8 b\n",
    "same-start": texts + ups + "edit 0 3 3 a\nedit 0 3 3 b\n",
    "mid-char": texts + ups + "edit 0 53 54 x\n",
    "out-of-bounds": texts + ups + "edit 0 10 4000000000 x\nedit 7 0 0 y\n",
    "many": texts + ups + "edits 4097 0 0 0 0 x\n",
    "many-spread": texts + ups + "edits 30 0 0 1 2 \\x00\n",
    "unknown-route": texts + ups + "route elsewhere\n",
    "forbidden-header": texts + ups + "header Content-Length 5\nheader bad\\nname v\n",
    "error": texts + ups + "error 400 policy_violation request refused: it contains personal data\n",
    "bad-status": texts + ups + "error 200 x y\nraw 99 text/plain body\n",
    "completion": texts + ups + "completion Hello from the plugin\n",
    "raw": texts + ups + "raw 418 application/json {\"teapot\":true}\n",
    "response-phase": texts + ups + "escalate hosted model=big the answer was empty\ndelta 0 restored\ndelta 2147484161 {\"a\":1}\n",
}
for name, body in decisions.items():
    write("decision", name, body)

# --- config_loader: the shipped config, the plugins' examples and the golden bad configs ---------
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.makedirs(os.path.join(ROOT, "config_loader"), exist_ok=True)
shutil.copy(os.path.join(repo, "switchyard.toml"), os.path.join(ROOT, "config_loader", "switchyard.toml"))
for path in sorted(glob.glob(os.path.join(repo, "proxy/tests/configs/bad/*.toml"))):
    shutil.copy(path, os.path.join(ROOT, "config_loader", "bad-" + os.path.basename(path)))
minimal = """[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[[upstream]]
name = "local"
base_url = "http://127.0.0.1:8081/v1"

[routing]
default = "local"
"""
write("config_loader", "minimal.toml", minimal)
write("config_loader", "everything.toml", """[server]
listen = "0.0.0.0:8443"
max_body_bytes = 1048576
workers = 2
max_connections = 100
max_sse_event_bytes = 65536
[server.tls]
cert = "cert.pem"
key = "/etc/ssl/key.pem"

[admin]
listen = "[::1]:8090"
token_env = "ADMIN_TOKEN"

[[upstream]]
name = "local"
base_url = "http://127.0.0.1:8081/v1"
models = ["smollm2"]
retries = 2
backoff_ms = 50

[[upstream]]
name = "hosted"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
ca_file = "ca.pem"
model = "gpt-4o-mini"
connect_timeout_ms = 1000
first_byte_timeout_ms = 5000
total_timeout_ms = 60000

[routing]
default = "local"
fallbacks = ["hosted"]
images = "hosted"

[[tenant]]
name = "blue"
key_env = "BLUE_KEY"

[cache]
max_mib = 64
max_entry_kib = 512

[plugins]
dir = "plugins"
headers = ["x-switchyard-tier"]
max_instances = 64
queue_timeout_ms = 100
max_memory_mib = 64

[[plugin]]
name = "pii-redact"
file = "pii_redact.wasm"
failure = "closed"
timeout_ms = 50
memory_mib = 32
config = { mode = "mask", types = ["email", "card"], names = ["Jane Doe"] }

[[plugin]]
name = "router"
file = "sub/router.wasm"
failure = "open"
isolation = "reuse"
[plugin.config.tiers.local]
upstream = "local"
""")
# Found by fuzzing (libFuzzer): an unknown empty key was reported at an empty path.
write("config_loader", "crash-empty-key.toml", '\n""=80')
write("config_loader", "escape-path.toml", minimal + """
[plugins]
dir = "plugins"

[[plugin]]
name = "x"
file = "../x.wasm"
failure = "open"
""")
