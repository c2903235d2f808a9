#!/usr/bin/env bash
# The README's first command (`make run`): installs what is missing, fetches the embedded default
# model, builds, installs the built-in plugins into .cache/plugins, and starts the inference
# service on 127.0.0.1:8081 and the proxy (API on :8080, admin on :8090, the plugin chain of
# switchyard.toml) in front of it; waits until both are ready. Ctrl-C stops both (the proxy drains).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
model=$(scripts/fetch-model.sh)
cargo build --locked -p switchyard -p switchyard-inference -p switchyard-tests \
  --bin switchyard --bin switchyard-inference --bin install-plugins
bin="${CARGO_TARGET_DIR:-target}/debug"
# The built-in plugins (pii-redact, tier-router, cache-policy) where switchyard.toml loads them.
"$bin/install-plugins" .cache/plugins >/dev/null

wait_ready() { # URL NAME SECONDS
  for _ in $(seq 1 $(($3 * 5))); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "run: $2 did not become ready at $1" >&2
  return 1
}

"$bin/switchyard-inference" --model "$model" --listen 127.0.0.1:8081 --parallel 4 --model-id smollm2 \
  --n-predict 512 &
inference=$!
trap 'kill $inference $proxy 2>/dev/null; wait 2>/dev/null' EXIT
proxy=""
wait_ready http://127.0.0.1:8081/healthz "the inference service" 120
"$bin/switchyard" serve --config switchyard.toml &
proxy=$!
wait_ready http://127.0.0.1:8090/healthz "the proxy" 30
cat <<MSG
ready: the proxy on http://127.0.0.1:8080/v1 (admin http://127.0.0.1:8090), the local model behind it.
  curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"smollm2","max_tokens":64,"messages":[{"role":"user","content":"Say hi"}]}'
MSG
wait $proxy
