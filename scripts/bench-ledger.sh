#!/usr/bin/env bash
# The usage ledger's own cost: admission latency and admit+settle throughput for the memory store
# and a real redis-server (unix socket, loopback TCP). Prints a table for BENCHMARKS.md.
# Usage: scripts/bench-ledger.sh [ITERATIONS]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -p switchyard --example ledger_bench \
  --config 'profile.dev.package.switchyard.opt-level=3'
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
"$target_dir/debug/examples/ledger_bench" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
