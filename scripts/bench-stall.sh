#!/usr/bin/env bash
# A plugin running to its deadline beside plain requests on one worker (`make bench-stall`):
# builds optimised and prints the table recorded in BENCHMARKS.md ("Plugin calls off the event loop").
# Usage: scripts/bench-stall.sh [--requests N] [--deadline-ms N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-wasm.sh
cargo build --locked -p switchyard -p switchyard-tests --bins \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3'
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
"$target_dir/debug/bench-stall" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
