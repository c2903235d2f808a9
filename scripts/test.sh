#!/usr/bin/env bash
# The README's test command (`make test`) and what CI runs: installs what the tests need, then runs
# every test in the workspace, the slow tiers included (the inference service's model tests and
# the OpenAI Python client against it, through scripts/test-inference.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked --exclude switchyard-inference
# The plugins' own unit tests, natively (their workspace is built for wasm32 by tests/build.rs):
# pii-redact's detectors held to their byte-by-byte references, the SDK's helpers.
host=$(rustc -vV | sed -n 's/^host: //p')
(cd plugins && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target}/plugins-native" \
  cargo test --release --locked --workspace --target "$host")
# The JavaScript and Python plugin SDKs' unit tests, then docs/plugin-kit.md's walk-throughs in
# Rust, JavaScript and Python (built with the real toolchains, pushed to a proxy, a request through
# it) and the internal-ids example in JavaScript and Python against its shared fixtures.
scripts/test-plugin-sdks.sh
scripts/test-plugin-kit.sh
# The README's three-replica example: three proxies and one Redis; fails if they overrun the limit.
scripts/example-replicas.sh >/dev/null
scripts/test-inference.sh
# The README's quick start, command by command, against the real model.
scripts/test-quickstart.sh
