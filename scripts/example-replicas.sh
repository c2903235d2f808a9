#!/usr/bin/env bash
# Three Switchyard replicas sharing their limits through one Redis, on one machine
# (README, "Three replicas and Redis"; docs/limits.md, "N replicas with Redis").
#
#   scripts/example-replicas.sh [BASE_PORT]      (default 8080)
#
# Starts redis-server (on a unix socket in a temp dir), the mock OpenAI upstream (tests'
# `mock-upstream`) and three proxies: API on BASE_PORT..BASE_PORT+2, admin on BASE_PORT+10..+12,
# each with the same config but its own ports, tenant `demo` limited to 6 requests a minute, and
# `[state] backend = "redis"`. Sends 8 requests round-robin over the three, prints each answer's
# status and the shared `x-ratelimit-remaining-requests`, then the tenant's /admin/usage as one
# replica sees it (the window is the shared one). Stops everything on exit. Exits non-zero when a
# request got anything but 200 or 429, or when the replicas together admitted other than 6 of
# the 8 within one minute.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-8080}

command -v redis-server >/dev/null || { echo "example-replicas: needs redis-server (scripts/setup.sh installs it)" >&2; exit 1; }
for port in $base $((base + 1)) $((base + 2)) $((base + 10)) $((base + 11)) $((base + 12)); do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "example-replicas: port $port is in use (pass another BASE_PORT)" >&2
    exit 1
  fi
done

cargo build --locked -q -p switchyard -p switchyard-tests --bin switchyard --bin mock-upstream
bin="${CARGO_TARGET_DIR:-target}/debug"

dir=$(mktemp -d)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT

wait_for() { # CHECK-COMMAND WHAT
  for _ in $(seq 1 150); do
    bash -c "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "example-replicas: $2 did not start" >&2
  return 1
}

redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save "" \
  --appendonly no >"$dir/redis.log" 2>&1 &
pids+=($!)
wait_for "grep -qi 'ready to accept connections' '$dir/redis.log'" "redis-server"

"$bin/mock-upstream" 127.0.0.1:0 >"$dir/mock.out" &
pids+=($!)
wait_for "grep -q '^listening' '$dir/mock.out'" "the mock upstream"
mock=$(awk '/^listening/ { print $2 }' "$dir/mock.out")

export SWITCHYARD_REDIS_URL="unix://$dir/redis.sock"
export DEMO_KEY="sk-demo-$RANDOM$RANDOM"
export SWITCHYARD_ADMIN_TOKEN="admin-$RANDOM$RANDOM"
for i in 0 1 2; do
  cat >"$dir/proxy-$i.toml" <<TOML
[server]
listen = "127.0.0.1:$((base + i))"

[admin]
listen = "127.0.0.1:$((base + 10 + i))"
token_env = "SWITCHYARD_ADMIN_TOKEN"

[[upstream]]
name = "mock"
base_url = "http://$mock/v1"

[routing]
default = "mock"

[[tenant]]
name = "demo"
key_env = "DEMO_KEY"
requests_per_minute = 6
tokens_per_minute = 100000
budget_usd_per_day = 1.0

[[price]]
upstream = "mock"
input_usd_per_mtok = 2.0
output_usd_per_mtok = 8.0

[state]
backend = "redis"
url_env = "SWITCHYARD_REDIS_URL"
on_unavailable = "closed"
TOML
  "$bin/switchyard" serve --config "$dir/proxy-$i.toml" >"$dir/proxy-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1 2; do
  wait_for "curl -fs http://127.0.0.1:$((base + 10 + i))/healthz" "proxy $i"
done
echo "three proxies on :$base-:$((base + 2)) (admin :$((base + 10))-:$((base + 12))), one Redis, tenant demo: 6 requests/min"

minute() { # the store's current minute, as the replicas see it
  curl -fs "http://127.0.0.1:$((base + 10))/admin/usage" -H "authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["tenants"][0]["window"]["now_ms"] // 60000)'
}
first_minute=$(minute)
ok=0 refused=0
for n in 1 2 3 4 5 6 7 8; do
  port=$((base + (n - 1) % 3))
  out=$(curl -s -D "$dir/headers" -o "$dir/body" -w '%{http_code}' \
    "http://127.0.0.1:$port/v1/chat/completions" -H "authorization: Bearer $DEMO_KEY" \
    -H 'content-type: application/json' \
    -d "{\"model\":\"m\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"request $n\"}]}")
  left=$(awk 'tolower($1) == "x-ratelimit-remaining-requests:" { print $2 }' "$dir/headers" | tr -d '\r')
  echo "request $n -> :$port  $out  x-ratelimit-remaining-requests: ${left:-?}"
  case "$out" in
    200) ok=$((ok + 1)) ;;
    429) refused=$((refused + 1)) ;;
    *) cat "$dir/body" >&2; echo; echo "example-replicas: unexpected status $out" >&2; exit 1 ;;
  esac
done

echo "shared usage (GET /admin/usage on the third replica):"
curl -fs "http://127.0.0.1:$((base + 12))/admin/usage" -H "authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \
  | python3 -c 'import json,sys; t=json.load(sys.stdin)["tenants"][0]; print(json.dumps({k: t[k] for k in ("tenant","limits","window","remaining")}, indent=2))'

echo "admitted $ok, refused $refused (429)"
# In one minute the three together admit exactly 6; 8 requests straddling a minute's end may get
# up to 6 in each window (fixed windows, docs/limits.md).
if [ $((ok + refused)) -ne 8 ] || { [ "$(minute)" = "$first_minute" ] && [ "$ok" -ne 6 ]; }; then
  echo "example-replicas: the three replicas admitted $ok of 8 against a shared limit of 6" >&2
  exit 1
fi
