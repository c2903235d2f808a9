#!/usr/bin/env bash
# PII redaction evaluation (see BENCHMARKS.md, "PII redaction"): detection quality per entity type
# on a seeded labelled corpus, stream leaks and restore mismatches, and redaction throughput, all
# through the real pii-redact component in the host. Built in the dev profile with the two
# project crates optimised (as scripts/bench-plugins.sh), so wasmtime is not rebuilt for release.
# Arguments: [SEED [MESSAGES]] (defaults 42 and 3000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-wasm.sh
exec cargo run -q -p switchyard-tests --bin pii-eval \
  --config 'profile.dev.package.switchyard-tests.opt-level=3' \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  -- "$@"
