#!/usr/bin/env bash
# Builds switchyard-inference and runs it on the embedded default model (fetched on first use).
# Extra arguments go to the server, e.g. scripts/run-inference.sh --listen 127.0.0.1:8081 --parallel 4
# Readiness: GET /healthz answers 200 {"status":"ready"} once the model is loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
scripts/setup.sh cmake g++ libclang1-14 libclang-common-14-dev
model=$(scripts/fetch-model.sh)
# The dev profile, as the tests use: llama.cpp is a cmake Release build either way, and one
# llama.cpp build (about 19 CPU-minutes) is shared with the tests instead of two.
cargo build --quiet -p switchyard-inference ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} --bin switchyard-inference
exec "$CARGO_TARGET_DIR/debug/switchyard-inference" --model "$model" "$@"
