#!/usr/bin/env bash
# Two proxy binaries' cost of Redis-backed limits, interleaved in one run (what BENCHMARKS.md's
# "Limits on the request path" A/B rows come from): a tenant without limits (NEW), and the four
# generous limits of bench-limits on a redis-server of their own, once with OLD and once with NEW.
# wrk -t2 -c64 against each in turn, ROUNDS rounds; per run the CPU time each process spent per
# request (proxy, its redis-server, the mock upstream, wrk), from /proc and GNU time.
# Usage: scripts/ab-limits.sh OLD_SWITCHYARD NEW_SWITCHYARD [ROUNDS] [SECONDS]
# (build the binaries as scripts/run-bench.sh does; needs target/debug/mock-upstream, wrk,
# redis-server, GNU time.)
set -euo pipefail
cd "$(dirname "$0")/.."
old="$(realpath "${1:?usage: scripts/ab-limits.sh OLD NEW [ROUNDS] [SECONDS]}")"
new="$(realpath "${2:?usage: scripts/ab-limits.sh OLD NEW [ROUNDS] [SECONDS]}")"
rounds="${3:-3}"; secs="${4:-8}"
mock_bin="${CARGO_TARGET_DIR:-target}/debug/mock-upstream"
dir="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
"$mock_bin" > "$dir/mock.out" &
mock=$!; pids+=("$mock")
for _ in $(seq 50); do grep -q '127.0.0.1:' "$dir/mock.out" 2>/dev/null && break; sleep 0.1; done
mock_addr="$(grep -o '127.0.0.1:[0-9]*' "$dir/mock.out" | head -1)"
declare -A redis_pid
for n in old new; do
  redis-server --port 0 --save '' --appendonly no --unixsocket "$dir/$n.sock" > /dev/null &
  redis_pid[$n]=$!; pids+=("$!")
done
limits='requests_per_minute = 1000000000
tokens_per_minute = 1000000000000
max_concurrent = 100000
budget_usd_per_day = 1000000000.0
[[price]]
upstream = "local"
input_usd_per_mtok = 1.0
output_usd_per_mtok = 2.0'
config() { # port, the lines after the tenant
  printf '[server]\nlisten = "127.0.0.1:%s"\n[admin]\nlisten = "127.0.0.1:%s"\n[[upstream]]\nname = "local"\nbase_url = "http://%s/v1"\n[routing]\ndefault = "local"\n[[tenant]]\nname = "bench"\nkey_env = "BENCH_KEY"\n%s\n' \
    "$1" "$(($1 + 10))" "$mock_addr" "$2" > "$dir/$1.toml"
}
config 18390 ""
config 18391 "$limits
[state]
backend = \"redis\"
url_env = \"URL_OLD\""
config 18392 "$limits
[state]
backend = \"redis\"
url_env = \"URL_NEW\""
export BENCH_KEY=bench-key URL_OLD="unix://$dir/old.sock" URL_NEW="unix://$dir/new.sock" SWITCHYARD_LOG=warn
declare -A proxy redis name
"$new" serve --config "$dir/18390.toml" & proxy[18390]=$!; pids+=("$!")
"$old" serve --config "$dir/18391.toml" & proxy[18391]=$!; pids+=("$!")
"$new" serve --config "$dir/18392.toml" & proxy[18392]=$!; pids+=("$!")
redis[18390]=""; redis[18391]=${redis_pid[old]}; redis[18392]=${redis_pid[new]}
name[18390]="tenant, no limits (NEW)"; name[18391]="4 limits, redis (OLD)"; name[18392]="4 limits, redis (NEW)"
python3 - "$dir/body.lua" <<'PY'
import json, sys
sentence = "Please summarise the quarterly report for the operations team and list risks. "
body = json.dumps({"model": "bench", "temperature": 0.7, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": sentence * (2048 // len(sentence))}]})
quoted = body.replace("\\", "\\\\").replace('"', '\\"')
open(sys.argv[1], "w").write(
    f'wrk.method = "POST"\nwrk.body = "{quoted}"\n'
    'wrk.headers["Content-Type"] = "application/json"\n'
    'wrk.headers["Authorization"] = "Bearer bench-key"\n')
PY
for port in 18390 18391 18392; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  wrk -t2 -c64 -d2s -s "$dir/body.lua" "http://127.0.0.1:$port/v1/chat/completions" > /dev/null
done
cpu() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
echo "machine: $(nproc) cores, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg); old $old, new $new"
echo
echo "| round | target | req/s | proxy CPU µs/req | redis CPU µs/req | mock CPU µs/req | wrk CPU µs/req | all µs/req |"
echo "|---|---|---|---|---|---|---|---|"
for r in $(seq "$rounds"); do
  for port in 18390 18391 18392; do
    p0=$(cpu "${proxy[$port]}"); r0=$(cpu "${redis[$port]}"); m0=$(cpu "$mock")
    out=$(/usr/bin/time -f "WRKCPU %U %S" wrk -t2 -c64 -d"${secs}s" -s "$dir/body.lua" \
      "http://127.0.0.1:$port/v1/chat/completions" 2>&1)
    p1=$(cpu "${proxy[$port]}"); r1=$(cpu "${redis[$port]}"); m1=$(cpu "$mock")
    echo "$out" | awk -v r="$r" -v t="${name[$port]}" -v p="$((p1 - p0))" -v d="$((r1 - r0))" -v m="$((m1 - m0))" '
      /requests in/ {n = $1} /Requests\/sec/ {rps = int($2)} /WRKCPU/ {w = ($2 + $3) * 100}
      END {tick = 1e4 / n; printf "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f |\n", r, t, rps,
        p * tick, d * tick, m * tick, w * tick, (p + d + m + w) * tick}'
  done
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
