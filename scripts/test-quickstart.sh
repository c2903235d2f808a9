#!/usr/bin/env bash
# Runs the README's quick start as a reader would, against the real model: starts `make run`, then
# every command of the README's quick-start curl block (taken from README.md itself, so the README
# cannot drift from what is tested), and checks each answer: chat answers are completions, not
# errors; /metrics is Prometheus text; and the PII example's email was found by pii-redact (so it
# went upstream as a placeholder). Uses the README's fixed ports 8080, 8081 and 8090.
set -euo pipefail
cd "$(dirname "$0")/.."

for port in 8080 8081 8090; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "test-quickstart: port $port is in use; the quick start needs it" >&2
    exit 1
  fi
done

log=$(mktemp)
# An admin token, so the check below can read pii-redact's counters from /admin/plugins.
export SWITCHYARD_ADMIN_TOKEN="quickstart-$RANDOM$RANDOM"
setsid make run >"$log" 2>&1 &
run=$!
stop() {
  kill -INT -- "-$run" 2>/dev/null || true
  wait "$run" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT

for _ in $(seq 1 3000); do
  grep -q '^ready:' "$log" && break
  kill -0 "$run" 2>/dev/null || { cat "$log" >&2; echo "test-quickstart: make run exited" >&2; exit 1; }
  sleep 0.2
done
grep -q '^ready:' "$log" || { cat "$log" >&2; echo "test-quickstart: never ready" >&2; exit 1; }

# The README's quick-start commands: the second ```sh block under "## Quick start", with
# backslash-continued lines joined and comments dropped.
commands=$(awk '
  /^## Quick start/ { inside = 1; next }
  /^## / { inside = 0 }
  inside && /^```sh/ { block++; if (block == 2) { grab = 1 }; next }
  inside && /^```/ { grab = 0; next }
  grab { print }
' README.md | sed -e 's/#.*$//' | awk '/\\$/ { sub(/\\$/, ""); line = line $0; next } { print line $0; line = "" }' | grep -v '^[[:space:]]*$')
[ -n "$commands" ] || { echo "test-quickstart: no commands found in README.md" >&2; exit 1; }

passed=0 failed=0
while IFS= read -r command; do
  out=$(bash -c "$command" 2>&1) && status=0 || status=$?
  ok=1
  if [ "$status" -ne 0 ] || [ -z "$out" ]; then ok=0
  elif [[ "$command" == *"/v1/"* ]]; then
    python3 -c 'import json,sys; a=json.loads(sys.stdin.read()); sys.exit(0 if "error" not in a and a["choices"][0]["message"]["content"] else 1)' <<<"$out" || ok=0
  elif [[ "$command" == *"/metrics"* ]]; then
    grep -q '^switchyard_requests_total' <<<"$out" || ok=0
  fi
  if [ "$ok" -eq 1 ]; then
    passed=$((passed + 1)); echo "ok: $command"
  else
    failed=$((failed + 1)); echo "FAILED (exit $status): $command"; echo "$out" | head -c 2000; echo
  fi
done <<<"$commands"

# The PII example: pii-redact found the email (so the model saw a placeholder).
found=$(curl -s -H "authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" localhost:8090/admin/plugins |
  python3 -c 'import json,sys; p=[p for p in json.load(sys.stdin)["plugins"] if p["name"]=="pii-redact"]; print(p[0]["counters"].get("found.email", 0) if p else 0)')
if [ "${found:-0}" -ge 1 ]; then
  passed=$((passed + 1)); echo "ok: the README's email was redacted before the model saw it"
else
  failed=$((failed + 1)); echo "FAILED: pii-redact did not report the README's email (found.email=$found)"
fi
echo "quickstart: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
