#!/usr/bin/env bash
# Runs the official OpenAI Python client (in a venv made here) against a freshly started
# switchyard-inference on the default model. Usage: scripts/test-inference-python.sh [MODEL.gguf]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"

model="${1:-$(scripts/fetch-model.sh)}"
venv=.cache/venv-openai
# Pinned so the test means the same thing on every machine; bump deliberately.
OPENAI_VERSION=3.57.0
if ! "$venv/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
fi

cargo build --quiet -p switchyard-inference --bin switchyard-inference
bin="$CARGO_TARGET_DIR/debug/switchyard-inference"
log=$(mktemp)
NO_COLOR=1 "$bin" --model "$model" --listen 127.0.0.1:0 --parallel 2 --ctx-size 4096 --threads 2 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

addr=""
for _ in $(seq 1 600); do
  addr=$(grep -o 'addr=[0-9.]*:[0-9]*' "$log" | head -1 | cut -d= -f2 || true)
  if [ -n "$addr" ] && curl -fs "http://$addr/healthz" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; echo "server never listened" >&2; exit 1; }
"$venv/bin/python" inference/tests/openai_client.py "http://$addr"
