"""Which leading digits a libphonenumber pattern allows, per national number length.

The metadata's `national_number_pattern` is a regular expression over digits (classes, groups,
alternation, counted repeats). `prefixes(pattern, length, k)` runs it as a set of NFA states
(position, first k digits read) and returns the k-digit prefixes of every digit string of exactly
`length` digits that the pattern matches in full. Only the regex features the metadata uses are
handled; anything else raises, so a new metadata release cannot be read silently wrong.
"""

import re._constants as C
import re._parser as P

DIGITS = "0123456789"


def _class(items):
    out, negate = set(), False
    for op, av in items:
        if op is C.LITERAL:
            out.add(chr(av))
        elif op is C.RANGE:
            out.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is C.CATEGORY and av is C.CATEGORY_DIGIT:
            out.update(DIGITS)
        elif op is C.NEGATE:
            negate = True
        else:
            raise ValueError(f"unsupported class item {op}")
    if negate:
        out = set(DIGITS) - out
    return out & set(DIGITS)


def _run(seq, states, length, k):
    for op, av in seq:
        if not states:
            return states
        if op is C.LITERAL:
            states = _step(states, {chr(av)} & set(DIGITS), length, k)
        elif op is C.IN:
            states = _step(states, _class(av), length, k)
        elif op is C.SUBPATTERN:
            states = _run(av[3], states, length, k)
        elif op is C.BRANCH:
            out = set()
            for alt in av[1]:
                out |= _run(alt, states, length, k)
            states = out
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            hi = length if hi is C.MAXREPEAT else hi
            for _ in range(lo):
                states = _run(sub, states, length, k)
            acc = set(states)
            cur = states
            for _ in range(hi - lo):
                cur = _run(sub, cur, length, k) - acc
                if not cur:
                    break
                acc |= cur
            states = acc
        elif op is C.AT:
            pass
        else:
            raise ValueError(f"unsupported regex op {op}")
    return states


def _step(states, chars, length, k):
    out = set()
    for pos, pre in states:
        if pos >= length or not chars:
            continue
        if len(pre) < k:
            for c in chars:
                out.add((pos + 1, pre + c))
        else:
            out.add((pos + 1, pre))
    return out


def prefixes(pattern, length, k):
    """The k-digit prefixes of the `length`-digit strings that fully match `pattern`."""
    end = _run(P.parse(pattern), {(0, "")}, length, k)
    return sorted(pre for pos, pre in end if pos == length)


if __name__ == "__main__":
    import re

    for pat, n in [(r"[2-9]\d{2}[2-9]\d{6}", 10), (r"1(?:[0-79]\d{7}(?:\d(?:\d{2})?)?|8[0-24-9]\d{7})|[2-478]\d{8}", 9)]:
        got = prefixes(pat, n, 3)
        brute = sorted({s[:3] for s in (f"{p:03d}" + "5" * (n - 3) for p in range(1000)) if re.fullmatch(pat, s)})
        assert set(brute) <= set(got), (pat, set(brute) - set(got))
        print(pat, n, len(got))
