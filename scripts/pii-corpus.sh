#!/usr/bin/env bash
# Generates one split of the PII evaluation corpus (scripts/pii-corpus/generate.py) into
# .cache/pii-corpus/SPLIT.jsonl and prints its path. Installs the generator's pinned data sources
# into .cache/pii-venv on first use (python3 with venv and pip; on Debian: python3-venv).
# Usage: scripts/pii-corpus.sh dev|heldout|selftest [generate.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
split="${1:?usage: scripts/pii-corpus.sh dev|heldout|selftest [options]}"
shift
venv=.cache/pii-venv
req=scripts/pii-corpus/requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 lacks ensurepip until python3-venv is installed.
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null
      python3 -m venv "$venv"
    else
      echo "python3 -m venv failed: install python3-venv" >&2
      exit 1
    fi
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  cp "$req" "$venv/requirements.txt"
fi
mkdir -p .cache/pii-corpus
out=".cache/pii-corpus/$split.jsonl"
"$venv/bin/python" scripts/pii-corpus/generate.py --split "$split" --out "$out.tmp" "$@"
mv "$out.tmp" "$out"
echo "$out"
