#!/usr/bin/env bash
# Installs the Rust target the plugins are built for. Plugins are wasm32-unknown-unknown core
# modules wrapped into components by tests/build.rs (no wasi imports: see plugins/README.md).
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
