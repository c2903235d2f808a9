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
# Time the hypervisor gave the VM's CPUs to others (the 8th number of /proc/stat's cpu line, in
# clock ticks): on a shared VM a run that lost seconds of CPU this way is not comparable.
steal() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f", $9 / hz}' /proc/stat; }
steal_before=$(steal)
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git describe --always --dirty 2>/dev/null || echo unknown)"
"$target_dir/debug/$program" "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); CPU seconds stolen by the hypervisor during the run: $(awk -v a="$steal_before" -v b="$(steal)" 'BEGIN {printf "%.2f", b - a}')"
