#!/usr/bin/env bash
# Builds the proxy and the benchmark programs optimised (the project's crates at opt-level 3 in the
# dev profile, whose dependencies are optimised already) and runs one of them, with a line that
# names the machine, its load and the commit around the table it prints.
# Usage: scripts/run-bench.sh PROGRAM [ARGS...]   (e.g. bench-streams --streams 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
program="${1:?usage: scripts/run-bench.sh PROGRAM [ARGS...]}"
shift
scripts/setup-wasm.sh
cargo build --locked -p switchyard -p switchyard-tests --bins \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3'
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
"$target_dir/debug/$program" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
