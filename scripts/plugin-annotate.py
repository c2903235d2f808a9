#!/usr/bin/env python3
"""Where a plugin function's time goes, instruction by instruction (docs/plugins.md, "Profiling a
plugin").

perf names a plugin's functions through wasmtime's perf map (`[plugins] perf_map = true`), but it
cannot show their instructions: the code was compiled at load time. The proxy's artifact cache
(`plugins.artifact_cache`) holds that same code as an ELF file with a symbol per function
(`<sha256 of the .wasm>-<engine>.cwasm`). This script puts the two together: each sample's
address, minus where the perf map says the function was loaded, is an offset into the function's
disassembly in the artifact.

Usage: scripts/plugin-annotate.py PERF_DATA PERF_MAP ARTIFACT FUNCTION [--top N] [--listing FILE]
  PERF_DATA  a `perf record -p <proxy pid>` of the running proxy (call graphs not needed)
  PERF_MAP   /tmp/perf-<proxy pid>.map, written by the proxy
  ARTIFACT   the plugin's .cwasm from plugins.artifact_cache (the one the proxy loaded)
  FUNCTION   a part of the function's name, e.g. `name_at` (must pick exactly one function)
  --top N    how many of the hottest instructions to print (default 25)
  --listing FILE  also write the whole disassembly with a sample count per instruction
Needs perf, nm and objdump (binutils).
"""

import argparse
import bisect
import collections
import re
import subprocess
import sys


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def loaded_copies(perf_map, function):
    """(name, [(start, size)]) of the one function whose name contains `function`; a plugin
    loaded more than once (hot swaps, several registries) has one copy per load."""
    copies = collections.defaultdict(set)
    with open(perf_map) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) == 3 and function in parts[2]:
                copies[parts[2]].add((int(parts[0], 16), int(parts[1], 16)))
    # wasmtime writes each function under its symbol name and under `wasm[i]::function[j]::...`:
    # keep the longer name of entries at the same addresses.
    by_ranges = {}
    for name, ranges in copies.items():
        key = frozenset(ranges)
        if key not in by_ranges or len(name) > len(by_ranges[key]):
            by_ranges[key] = name
    names = sorted(set(by_ranges.values()))
    if len(names) != 1:
        found = "\n  ".join(names) if names else "(none)"
        sys.exit(f"{function!r} must name exactly one function in {perf_map}; it names:\n  {found}")
    ranges = sorted(set().union(*(r for r, n in by_ranges.items() if n == names[0])))
    return names[0], ranges


def artifact_symbol(artifact, name):
    """Offset of `name` in the artifact's text."""
    for line in run(["nm", artifact]).splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    sys.exit(f"{name} is not in {artifact}: is it the artifact of the plugin that was profiled?")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("perf_data")
    p.add_argument("perf_map")
    p.add_argument("artifact")
    p.add_argument("function")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--listing")
    a = p.parse_args()

    name, ranges = loaded_copies(a.perf_map, a.function)
    size = ranges[0][1]
    start = artifact_symbol(a.artifact, name)
    disassembly = run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={start}",
                       f"--stop-address={start + size}", a.artifact])
    insns = []
    for line in disassembly.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s*(.*)", line)
        if m:
            insns.append((int(m.group(1), 16) - start, m.group(2)))
    if not insns:
        sys.exit(f"no instructions for {name} in {a.artifact}")
    offsets = [o for o, _ in insns]

    samples = collections.Counter()
    total = 0
    for line in run(["perf", "script", "-i", a.perf_data, "-G", "-F", "ip"]).split():
        try:
            ip = int(line, 16)
        except ValueError:
            continue
        total += 1
        for base, length in ranges:
            if base <= ip < base + length:
                samples[bisect.bisect_right(offsets, ip - base) - 1] += 1
                break
    hits = sum(samples.values())
    print(f"{name}: {len(insns)} instructions, {len(ranges)} loaded copies")
    print(f"samples: {hits} of {total} in the profile ({100 * hits / max(total, 1):.1f} %)")
    if hits:
        print(f"\n| samples | share | offset | instruction |\n|---|---|---|---|")
        for i, n in samples.most_common(a.top):
            print(f"| {n} | {100 * n / hits:.1f} % | {insns[i][0]:#x} | `{insns[i][1]}` |")
    if a.listing:
        with open(a.listing, "w") as out:
            for i, (offset, text) in enumerate(insns):
                out.write(f"{samples.get(i, 0):6d} {offset:6x}: {text}\n")


if __name__ == "__main__":
    main()
