#!/usr/bin/env bash
# Proxy overhead benchmark (`make bench`): builds in release, installs nginx and wrk, and prints
# the table recorded in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh nginx-light wrk curl
cargo build --release --locked -p switchyard -p switchyard-tests --bins
target_dir="${CARGO_TARGET_DIR:-target}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$target_dir/release/bench-proxy" "$@"
