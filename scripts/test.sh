#!/usr/bin/env bash
# The README's test command (`make test`) and what CI runs: installs what the tests need, then runs
# every test in the workspace, the slow tiers included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked
