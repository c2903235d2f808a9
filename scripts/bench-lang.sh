#!/usr/bin/env bash
# Plugins in Rust, JavaScript and Python side by side (see BENCHMARKS.md, "Plugins in other
# languages"): size, compile vs cached load, restart and hot swap, per-call cost fresh and reuse.
# Builds the JS/Python test plugins with the pinned toolchains first (installing them if missing).
# The project crates are optimised as in scripts/bench-plugins.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-wasm.sh
scripts/build-lang-plugins.sh .cache/polyglot --next >/dev/null
exec cargo run -q -p switchyard-tests --bin bench_lang \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3' \
  -- "$@"
