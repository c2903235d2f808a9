"""Natural text without planted PII, for false positives per 10,000 words: real prose and code
that exist on the machine. Sources, each used when present:

- `python-doc`: docstrings of the Python standard library (the running interpreter's);
- `python-code`: the standard library's source, in blocks of 25 lines (code and comments);
- `licenses`: /usr/share/common-licenses (Debian's base-files);
- `rust-book`: the Rust book and reference shipped with the toolchain's docs (HTML, as text).

Chunks are split between dev and held-out by a hash of their origin, so the two splits never
share text. Real text holds some real emails and IP addresses (license headers, examples): they
are labelled `incidental` and neither count as false positives nor towards recall. Lines naming
authors (`Copyright`, `Author`, `Written by`, `Contributed by`, `Thanks to`) are dropped, since
they are full of real person names.
"""

import ast
import glob
import hashlib
import html.parser
import ipaddress
import os
import re
import sysconfig
from pathlib import Path

AUTHOR_LINE = re.compile(r"copyright|author|written by|contributed by|thanks to|maintainer|\(c\)|©", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


def _clean(text):
    return "\n".join(l for l in text.splitlines() if not AUTHOR_LINE.search(l)).strip()


def _python_chunks():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib).as_posix()
        if rel.startswith(("test/", "site-packages/", "idlelib/idle_test/", "lib2to3/tests/", "tkinter/test/", "unittest/test/")) or "/tests/" in rel:
            continue
        try:
            src = path.read_text(encoding="utf-8")
            tree = ast.parse(src)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= 12:
                    yield "python-doc", f"{rel}:{getattr(node, 'lineno', 0)}", doc
        lines = src.splitlines()
        for i in range(0, len(lines), 25):
            block = "\n".join(lines[i : i + 25])
            if len(block.split()) >= 20:
                yield "python-code", f"{rel}#{i}", block


def _license_chunks():
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path) and not os.path.islink(path):
            text = Path(path).read_text(encoding="utf-8", errors="replace")
            for i, para in enumerate(re.split(r"\n\s*\n", text)):
                if len(para.split()) >= 12:
                    yield "licenses", f"{os.path.basename(path)}#{i}", para


class _Text(html.parser.HTMLParser):
    """The text of <p>, <li> and <pre> elements of an HTML page."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.buf = []
        self.out = []

    def handle_starttag(self, tag, attrs):
        if tag in ("p", "li", "pre"):
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in ("p", "li", "pre") and self.depth:
            self.depth -= 1
            if not self.depth:
                self.out.append("".join(self.buf).strip())
                self.buf = []

    def handle_data(self, data):
        if self.depth:
            self.buf.append(data)


def _rust_chunks():
    roots = sorted(glob.glob(os.path.expanduser("~/.rustup/toolchains/*/share/doc/rust/html")))
    if not roots:
        return
    root = Path(roots[0])
    for sub in ("book", "reference"):
        for path in sorted((root / sub).glob("*.html")):
            if path.name in ("print.html", "toc.html", "404.html"):
                continue
            p = _Text()
            p.feed(path.read_text(encoding="utf-8", errors="replace"))
            for i, para in enumerate(p.out):
                if len(para.split()) >= 12:
                    yield "rust-book", f"{sub}/{path.name}#{i}", para


def _split_of(origin):
    return "dev" if hashlib.sha256(origin.encode()).digest()[0] % 2 == 0 else "heldout"


def _incidental(text):
    """Spans (in characters) of real emails and IP addresses in natural text."""
    spans = []
    for m in EMAIL.finditer(text):
        spans.append(("email", m.start(), m.end()))
    for m in IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
            spans.append(("ip", m.start(), m.end()))
        except ValueError:
            pass
    for m in IPV6.finditer(text):
        try:
            if m.group().count(":") >= 2 and any(c.isdigit() for c in m.group()):
                ipaddress.IPv6Address(m.group())
                spans.append(("ip", m.start(), m.end()))
        except ValueError:
            pass
    spans.sort(key=lambda s: s[1])
    out, end = [], -1
    for s in spans:
        if s[1] >= end:
            out.append(s)
            end = s[2]
    return out


def chunks(rng, split, words):
    """Natural-text chunks of `split` until about `words` words: [(source, origin, text, spans)],
    drawn evenly from each available source."""
    by_source = {}
    for gen in (_python_chunks, _license_chunks, _rust_chunks):
        for source, origin, text in gen():
            if _split_of(origin) != split and split in ("dev", "heldout"):
                continue
            text = _clean(text)
            if len(text.split()) >= 12:
                by_source.setdefault(source, []).append((origin, text))
    out, total = [], 0
    pools = {s: rng.sample(v, len(v)) for s, v in sorted(by_source.items())}
    while total < words and any(pools.values()):
        for source in sorted(pools):
            if pools[source] and total < words:
                origin, text = pools[source].pop()
                out.append((source, origin, text, _incidental(text)))
                total += len(text.split())
    return out
