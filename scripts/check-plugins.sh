#!/usr/bin/env bash
# What a commit to plugins/ or plugin-sdk/ must pass: rustfmt and clippy of the plugins workspace,
# for the wasm target the plugins are built for. (The host workspace's `make check` does not see it.)
set -euo pipefail
cd "$(dirname "$0")/../plugins"
../scripts/setup-wasm.sh
cargo fmt --all -- --check
cargo clippy --release --target wasm32-unknown-unknown --workspace -- -D warnings
