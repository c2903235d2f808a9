"""The official OpenAI Python client against a running switchyard-inference.

Usage: python openai_client.py http://127.0.0.1:PORT
Checks a model list, a chat answer, a stream (with usage) that equals it, a completion, and that an
unsupported parameter is refused with a 400 that names it. Prints 'N passed, N failed'.
"""

import sys

import openai
from openai import OpenAI


def main(base: str) -> int:
    client = OpenAI(base_url=base + "/v1", api_key="not-needed", max_retries=0, timeout=120)
    passed, failed = 0, 0

    def check(name, fn):
        nonlocal passed, failed
        try:
            fn()
            print(f"ok   {name}")
            passed += 1
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            failed += 1

    model_id = {}

    def models():
        page = client.models.list()
        ids = [m.id for m in page.data]
        assert ids, "empty model list"
        model_id["id"] = ids[0]

    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    answer = {}

    def chat():
        r = client.chat.completions.create(
            model=model_id.get("id", "default"), messages=messages, temperature=0, max_tokens=32
        )
        text = r.choices[0].message.content
        assert text and "Paris" in text, repr(text)
        assert r.choices[0].finish_reason in ("stop", "length")
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        answer["text"] = text

    def stream():
        chunks = list(
            client.chat.completions.create(
                model=model_id.get("id", "default"),
                messages=messages,
                temperature=0,
                max_tokens=32,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == answer.get("text"), f"{text!r} != {answer.get('text')!r}"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    def completion():
        r = client.completions.create(
            model=model_id.get("id", "default"), prompt="One, two, three,", max_tokens=4, temperature=0
        )
        assert r.choices[0].text, "empty completion"
        assert r.usage.completion_tokens <= 4

    def unsupported_parameter():
        try:
            client.chat.completions.create(
                model=model_id.get("id", "default"), messages=messages, logprobs=True
            )
        except openai.BadRequestError as e:
            assert "logprobs" in str(e), str(e)
            return
        raise AssertionError("logprobs was accepted")

    check("models.list", models)
    check("chat.completions", chat)
    check("chat.completions stream", stream)
    check("completions", completion)
    check("unsupported parameter -> 400", unsupported_parameter)
    print(f"openai-client: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
