#!/usr/bin/env bash
# PII redaction evaluation (see BENCHMARKS.md, "PII redaction"): makes a split of the corpus from
# external data (scripts/pii-corpus.sh; installs its pinned Python deps into .cache/pii-venv),
# then sends it through the real pii-redact component in the host with switchyard.toml's
# pii-redact config: recall and precision per type, phones per region, false positives per 10k
# words of natural text, stream leaks and MB/s. Built in the dev profile with the two project
# crates optimised (as scripts/bench-plugins.sh), so wasmtime is not rebuilt for release.
#
# Usage: scripts/eval-pii.sh [--split dev|heldout] [--show N] [--stream N] [--no-bench]
#   --split dev      (default) the split detector authors tune on
#   --split heldout  final numbers only: never tune on it, never read its misses
#   --show N         also print the first N misses and false positives (dev only)
#   --nocue          score the split's set of names in running text with no cue
#                    (scripts/pii-corpus/nocue.py) instead of its main corpus
set -euo pipefail
cd "$(dirname "$0")/.."
split=dev
nocue=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --split) split="${2:?--split dev|heldout}"; shift 2 ;;
    --nocue) nocue=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$split" in
  dev|heldout) ;;
  *) echo "--split must be dev or heldout" >&2; exit 2 ;;
esac
if [ "$split" = heldout ] && printf '%s\n' "${args[@]+"${args[@]}"}" | grep -q -- '--show'; then
  echo "--show is refused on the held-out split: its misses must not guide tuning" >&2
  exit 2
fi
corpus="$(scripts/pii-corpus.sh "$split")"
if [ "$nocue" = 1 ]; then
  corpus=".cache/pii-corpus/nocue-$split.jsonl"
  (cd scripts/pii-corpus && ../../.cache/pii-venv/bin/python nocue.py --split "$split" --out "../../$corpus")
fi
scripts/setup-wasm.sh
echo "split $split; commit $(git describe --always --dirty 2>/dev/null || echo unknown); $(nproc) CPUs; $(date -u +%Y-%m-%dT%H:%MZ)"
exec cargo run -q -p switchyard-tests --bin pii-eval \
  --config 'profile.dev.package.switchyard-tests.opt-level=3' \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  -- --corpus "$corpus" ${args[@]+"${args[@]}"}
