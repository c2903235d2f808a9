#!/usr/bin/env bash
# Proxy overhead benchmark (`make bench`): builds optimised, installs nginx and wrk, and prints
# the table recorded in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh nginx-light wrk curl
# The dev profile already optimises every dependency (wasmtime included); the project's own crates
# are optimised here too, so these are optimised numbers without a second build of wasmtime.
cargo build --locked -p switchyard -p switchyard-tests --bins \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3'
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$target_dir/debug/bench-proxy" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
