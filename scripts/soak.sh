#!/usr/bin/env bash
# Soak test (issue 11, "Proof"): the switchyard binary with the default chain under mixed load for
# DURATION seconds (default 600) while the local upstream is killed and restarted and the plugins
# are hot-swapped 20 times; the RSS checked is the proxy process's. Prints the table recorded in
# BENCHMARKS.md; exits non-zero on a failed check.
# Usage: scripts/soak.sh [DURATION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
# The dev profile optimises every dependency (wasmtime included); the project's crates stay as
# tests build them, so this reuses the test build.
cargo build --locked -p switchyard-tests --bin soak
cargo build --locked -p switchyard --bin switchyard
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$target_dir/debug/soak" --seconds "$seconds"
