#!/usr/bin/env python3
"""Writes one split of the PII evaluation corpus as JSON lines (see BENCHMARKS.md, "PII
redaction"). Every line is one message:

    {"id": "dev-000001", "split": "dev", "kind": "labelled" | "natural", "carrier": "ticket",
     "text": "...", "words": 123,
     "entities": [{"type": "phone", "start": 10, "end": 24, "value": "...", "region": "DE",
                   "format": "national-dots", "incidental": false}]}

`start`/`end` are UTF-8 byte offsets into `text`, end exclusive; `value` is the text at that span.
Types: email, phone, card, iban, ssn, ip, secret, name, address, dob.

Usage: generate.py --split dev|heldout|selftest [--messages N] [--natural-words N] [--out FILE]

The splits use fixed seeds (below): the same on every machine with the pinned requirements, except
for the natural text, which comes from what the machine has (natural.py).
"""

import argparse
import json
import random
import sys

import carriers
import natural

SEEDS = {"dev": 0x5EED_0DE7, "heldout": 0x5EED_4E1D, "selftest": 0x5EED_7E57}
DEFAULTS = {"dev": (3000, 150_000), "heldout": (3000, 150_000), "selftest": (60, 3_000)}


def _bytes(text, entities):
    """Character offsets to UTF-8 byte offsets, checked against the values."""
    out = []
    for e in entities:
        s = len(text[: e["start"]].encode())
        b = len(e["value"].encode())
        assert text[e["start"] : e["end"]] == e["value"], (text, e)
        out.append({**e, "start": s, "end": s + b})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=sorted(SEEDS), required=True)
    ap.add_argument("--messages", type=int)
    ap.add_argument("--natural-words", type=int)
    ap.add_argument("--out")
    a = ap.parse_args()
    messages, words = DEFAULTS[a.split]
    messages = a.messages if a.messages is not None else messages
    words = a.natural_words if a.natural_words is not None else words
    rng = random.Random(SEEDS[a.split])
    out = open(a.out, "w", encoding="utf-8") if a.out else sys.stdout
    for i in range(messages):
        carrier, doc = carriers.message(rng)
        text = doc.text()
        ents = sorted(doc.entities, key=lambda e: e["start"])
        rec = {"id": f"{a.split}-{i:06d}", "split": a.split, "kind": "labelled", "carrier": carrier, "text": text, "words": len(text.split()), "entities": _bytes(text, ents)}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    nat_rng = random.Random(SEEDS[a.split] ^ 0xA7)
    for i, (source, origin, text, spans) in enumerate(natural.chunks(nat_rng, a.split, words)):
        ents = [{"type": t, "start": s, "end": e, "value": text[s:e], "incidental": True, "format": "incidental"} for t, s, e in spans]
        rec = {"id": f"{a.split}-n{i:06d}", "split": a.split, "kind": "natural", "carrier": source, "origin": origin, "text": text, "words": len(text.split()), "entities": _bytes(text, ents)}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
