#!/usr/bin/env bash
# Benchmarks switchyard-inference against llama.cpp's llama-server (built here by
# build-llama-server.sh) on the default model, one server at a time, same threads and slots.
# Prints a markdown table (stdout) to paste into BENCHMARKS.md; progress goes to stderr.
#   THREADS (2)  PARALLEL (8)  CTX_SIZE (16384)  N_GPU_LAYERS (0)  GEN_TOKENS (128)  REPS (3)
#   CARGO_FEATURES (e.g. cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"

scripts/setup.sh cmake g++ libclang1-14 libclang-common-14-dev
model=$(scripts/fetch-model.sh)
peer=$(scripts/build-llama-server.sh)
features=()
if [ -n "${CARGO_FEATURES:-}" ]; then features=(--features "$CARGO_FEATURES"); fi
# The dev profile is what tests use; llama.cpp itself is a cmake Release build in every profile
# (llama-cpp-sys-2 picks that), so only this crate's thin Rust layer is less optimised.
cargo build --quiet -p switchyard-inference "${features[@]}" --bin switchyard-inference --bin bench-inference
bin="$CARGO_TARGET_DIR/debug"

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
echo "Command: scripts/bench-inference.sh (THREADS=${THREADS:-2} PARALLEL=${PARALLEL:-8} N_GPU_LAYERS=${N_GPU_LAYERS:-0} CARGO_FEATURES=${CARGO_FEATURES:-})"
"$bin/bench-inference" --server-bin "$bin/switchyard-inference" --peer-bin "$peer" --model "$model" \
  --threads "${THREADS:-2}" --parallel "${PARALLEL:-8}" --ctx-size "${CTX_SIZE:-16384}" \
  --n-gpu-layers "${N_GPU_LAYERS:-0}" --gen-tokens "${GEN_TOKENS:-128}" --reps "${REPS:-3}"
