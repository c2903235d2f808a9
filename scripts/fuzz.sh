#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the targets in fuzz/:
#
#   scripts/fuzz.sh <request_parser|sse_relay|decision|config_loader|all> <seconds per target>
#
# Installs cargo-fuzz if missing and builds every target with the nightly toolchain
# (`cargo +nightly fuzz build -s none -a`: no sanitizer, since the code is safe Rust, but debug
# assertions and overflow checks on). cargo-fuzz instruments every crate, wasmtime included: the
# first build takes about 25 CPU-minutes. The sse_relay target loads the pii-redact component,
# built with the stable toolchain by tests/build.rs (nightly has no wasm32 target here).
#
# Each target runs alone (`-jobs=1`) under `nice -n 19`. It reads the committed seeds in
# fuzz/corpus/<target>/ and writes what it finds to .cache/fuzz/corpus/<target>/ (never into the
# committed seeds); a crash goes to fuzz/artifacts/<target>/ (git ignores it). At the end it prints
# one line per target: executions, executions per second, crashes, seconds, for BENCHMARKS.md.
# The same functions run briefly in `cargo test` (tests/tests/fuzz_corpus.rs), without nightly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage="usage: scripts/fuzz.sh <request_parser|sse_relay|decision|config_loader|all> <seconds>"
which=${1:?$usage}
seconds=${2:?$usage}
all=(request_parser sse_relay decision config_loader)
if [[ $which == all ]]; then targets=("${all[@]}"); else targets=("$which"); fi
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "unknown target $t; $usage" >&2; exit 2; }
done

toolchain=${FUZZ_TOOLCHAIN:-nightly}
# The instrumented build has its own target dir (fuzz/target, or FUZZ_TARGET_DIR): a
# CARGO_TARGET_DIR meant for the stable build must not receive it.
fuzz_target_dir=${FUZZ_TARGET_DIR:-$root/fuzz/target}
fuzz() { CARGO_TARGET_DIR=$fuzz_target_dir nice -n 19 cargo "+$toolchain" fuzz "$@"; }
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  cargo "+$toolchain" install cargo-fuzz --locked
fi
flags=(-s none -a)
fuzz build --fuzz-dir "$root/fuzz" "${flags[@]}"

work=$root/.cache/fuzz
mkdir -p "$work"
if [[ " ${targets[*]} " == *" sse_relay "* && -z ${SWITCHYARD_FUZZ_PII_REDACT:-} ]]; then
  # The stable toolchain (rust-toolchain.toml) builds the plugins, as for the tests. A component
  # already built (SWITCHYARD_FUZZ_PII_REDACT) saves that build.
  nice -n 19 cargo run -q -p switchyard-tests --bin install-plugins -- "$work/plugins" >/dev/null
  export SWITCHYARD_FUZZ_PII_REDACT=$work/plugins/pii_redact.wasm
fi

summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/run-$t" "$root/fuzz/artifacts/$t"
  rm -f "$work/run-$t"/fuzz-*.log
  started=$(date +%s)
  # libFuzzer's -jobs=1 runs one worker and writes its log to fuzz-0.log in the current directory.
  (cd "$work/run-$t" && fuzz run --fuzz-dir "$root/fuzz" "${flags[@]}" \
    "$t" "$work/corpus/$t" "$root/fuzz/corpus/$t" -- \
    -jobs=1 -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$root/fuzz/artifacts/$t/") || true
  elapsed=$(( $(date +%s) - started ))
  log=$work/run-$t/fuzz-0.log
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  crashes=$(find "$root/fuzz/artifacts/$t" -newermt "@$started" -type f | wc -l)
  summary+=("$t: ${runs:-?} executions, ${rate:-?} exec/s, $crashes crashes, ${elapsed} s (log: $log)")
done
printf '%s\n' "${summary[@]}"
