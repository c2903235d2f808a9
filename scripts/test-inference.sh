#!/usr/bin/env bash
# The inference service's whole test tier: installs what the build needs, fetches the default
# model, runs the crate's tests including the model tests and the trace through the proxy to the
# service (tests/tests/traces_inference.rs), then the OpenAI Python client.
# The project's main test script calls this; it can also run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"

# llama-cpp-sys-2 builds llama.cpp with cmake and generates bindings with bindgen (libclang).
scripts/setup.sh cmake g++ libclang1-14 libclang-common-14-dev curl
model=$(scripts/fetch-model.sh)

SWITCHYARD_MODEL="$model" cargo test -p switchyard-inference -- --include-ignored
# One trace across the proxy and the service (the proxy's test crate, with the model).
SWITCHYARD_MODEL="$model" cargo test -p switchyard-tests --test traces_inference -- --include-ignored
scripts/test-inference-python.sh "$model"
