#!/usr/bin/env bash
# The README's first command (`make run`): installs what is missing, builds, and starts the proxy
# with the example config. Stop it with Ctrl-C; it drains in-flight requests first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "switchyard: API on http://127.0.0.1:8080/v1, admin on http://127.0.0.1:8090"
exec cargo run --quiet --locked -p switchyard -- serve --config switchyard.toml
