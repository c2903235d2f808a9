"""Person names in running text with no cue: the part of a support ticket or a chat that names
someone without a title, a field, a greeting or a signature ("Assigned to Lautaro Tapia
yesterday"). The main corpus gives almost every name such a cue, so it cannot measure how names
are found without one. Each message is one sentence with one or two full names drawn as in
`people.person` (US census names 45 % of the time, else the top names of a names-dataset
country). Dev and held-out have their own seeds and their own sentences: the held-out sentences
were written before any detector ran on them and are for final numbers only.

Usage: nocue.py --split dev|heldout --out FILE [--messages N]
"""

import argparse
import json
import random

import people

SEEDS = {"dev": 0x5EED0C0E, "heldout": 0x5EED4E1E}

SENTENCES = {
    "dev": [
        "Ticket #{k}: user {a} reports that the export fails since Monday.",
        "cc: {a}; {b}",
        "Assigned to {a} yesterday, still open.",
        "Escalated after {a} called twice about the invoice.",
        "Notes from the call ({a}, {b}).",
        "Meeting moved: {a} cannot make it on Thursday.",
        "{a} from accounts asked for the refund status.",
        "Please loop in {a} on the next update.",
        "Spoke with {a} today; the replacement ships tomorrow.",
        "Owner {a}, reviewer {b}.",
        "The laptop was returned by {a} with a cracked screen.",
        "Can you check whether {a} still has access to the billing portal?",
        "Yesterday {a} and {b} both reported the same login error.",
        "Forwarding the complaint from {a} as discussed.",
    ],
    "heldout": [
        "Refund approved for {a}, order shipped back on Friday.",
        "Per our chat, {a} will send the signed form by noon.",
        "Remind {a} that the trial ends next week.",
        "Two tickets merged; both came from {a} and {b}.",
        "I think {a} already fixed the VPN issue for {b}.",
        "Access revoked for {a} after the audit.",
        "Handover: {a} takes the night shift, {b} the weekend.",
        "Invoice 2231 was disputed by {a} on the phone.",
    ],
}


def message(rng, split, i):
    """One record: the sentence with its names filled in, each name labelled by byte offsets."""
    template = rng.choice(SENTENCES[split])
    f1, l1, c1 = people.person(rng)
    f2, l2, c2 = people.person(rng)
    names = [(f"{f1} {l1}", c1)] + ([(f"{f2} {l2}", c2)] if "{b}" in template else [])
    text = template.replace("{k}", str(rng.randint(1000, 99999)))
    for key, (value, _) in zip(("{a}", "{b}"), names):
        text = text.replace(key, value, 1)
    entities = []
    for value, country in names:
        start = len(text[: text.find(value)].encode())
        entities.append({
            "type": "name", "start": start, "end": start + len(value.encode()), "value": value,
            "format": "full", "region": country,
        })
    return {
        "id": f"{split}-nocue-{i:05d}", "split": split, "kind": "labelled", "carrier": "no-cue",
        "text": text, "words": len(text.split()), "entities": entities,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=sorted(SEEDS), required=True)
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(SEEDS[args.split])
    with open(args.out, "w") as f:
        for i in range(args.messages):
            f.write(json.dumps(message(rng, args.split, i), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
