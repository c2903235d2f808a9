#!/usr/bin/env bash
# Plugin benchmark (see BENCHMARKS.md, "Plugins"): call cost vs native, and hot-swap time-to-live.
# Dependencies (wasmtime, cranelift) are already optimised in the dev profile; the two project
# crates are optimised here too, so the numbers are not debug-build numbers, without a second
# release build of wasmtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-wasm.sh
exec cargo run -q -p switchyard-tests --bin bench_plugin \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3' \
  -- "$@"
