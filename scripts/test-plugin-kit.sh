#!/usr/bin/env bash
# Runs every command of docs/plugin-kit.md's walk-throughs ("## JavaScript", "## Python",
# "## Rust"; or the languages given as arguments: js rust python), as written, each language in a
# fresh temporary directory: new, build (the real toolchains), test (fixtures in the real host),
# keygen, sign, then push to a proxy started here and a request through it. The proxy (with a mock
# upstream) listens on free ports; the documented 127.0.0.1:8090 / localhost:8080 are rewritten to
# them. Then it builds the internal-ids example in JavaScript and Python and replays the fixtures
# its Rust version passes. Needs scripts/setup-plugin-toolchains.sh (make setup).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(js rust python)

cargo build --locked -q -p switchyard -p switchyard-tests --bin switchyard --bin mock-upstream
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
export PATH="$bin:$PATH"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The sh blocks of one "## <heading>" section, one file per block.
blocks() {
  python3 - "$1" "$2" <<'PY'
import re, sys
heading, out = sys.argv[1], sys.argv[2]
text = open("docs/plugin-kit.md").read()
section = re.search(r"^## " + re.escape(heading) + r"\n(.*?)(?=^## |\Z)", text, re.S | re.M).group(1)
for i, block in enumerate(re.findall(r"```sh\n(.*?)```", section, re.S)):
    open(f"{out}.{i}", "w").write(block)
print(len(re.findall(r"```sh\n", section)))
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {
  for _ in $(seq 1 1500); do  # 5 minutes: a debug proxy compiles a 12-18 MB component at start
    bash -c "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "test-plugin-kit: $2 did not start" >&2
  return 1
}

# A proxy with the plugin `my-guard` from $1 (a built, signed component), trusting key $2.
start_proxy() {
  local dir=$1 key=$2 out=$3
  mkdir -p "$out/plugins"
  cp "$dir/build/my_guard.wasm" "$dir/build/my_guard.wasm.sig" "$out/plugins/"
  "$bin/mock-upstream" 127.0.0.1:0 >"$out/mock.out" &
  pids+=($!)
  wait_for "grep -q '^listening' '$out/mock.out'" "the mock upstream"
  api=$(free_port); admin=$(free_port)
  cat >"$out/proxy.toml" <<TOML
[server]
listen = "127.0.0.1:$api"
[admin]
listen = "127.0.0.1:$admin"
token_env = "SWITCHYARD_ADMIN_TOKEN"
[[upstream]]
name = "mock"
base_url = "http://$(awk '/^listening/ { print $2 }' "$out/mock.out")/v1"
[routing]
default = "mock"
[plugins]
dir = "$out/plugins"
trusted_keys = ["$key"]
[[plugin]]
name = "my-guard"
file = "my_guard.wasm"
failure = "closed"
timeout_ms = 1000
memory_mib = 64
config = { blocked_words = ["forbidden"], mask_digits = true }
TOML
  SWITCHYARD_ADMIN_TOKEN=$token "$bin/switchyard" serve --config "$out/proxy.toml" >"$out/proxy.log" 2>&1 &
  pids+=($!)
  wait_for "curl -sf http://127.0.0.1:$admin/healthz" "the proxy (see $out/proxy.log)"
}

for lang in "${langs[@]}"; do
  case $lang in js) heading=JavaScript ;; python) heading=Python ;; rust) heading=Rust ;; *) echo "unknown language $lang" >&2; exit 2 ;; esac
  echo "== $heading walk-through"
  dir="$work/$lang"; mkdir -p "$dir"
  n=$(blocks "$heading" "$work/$lang.block")
  [ "$n" = 2 ] || { echo "docs/plugin-kit.md, $heading: expected 2 sh blocks, found $n" >&2; exit 1; }
  (cd "$dir" && set -x && . "$work/$lang.block.0")
  plugin="$dir/my-guard"
  token="kit-$RANDOM$RANDOM"
  started=""
  api=8080 admin=8090 # the proxy's real ports once it started; no rewrite before that
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    if [[ $line == "switchyard plugin push"* && -z $started ]]; then
      start_proxy "$plugin" "$(sed -n 's/.*trusted_keys = \["\(.*\)"\]/\1/p' "$work/$lang.keygen")" "$work/$lang-proxy"
      started=1
    fi
    line=${line//127.0.0.1:8090/127.0.0.1:$admin}
    line=${line//localhost:8080/127.0.0.1:$api}
    echo "+ $line"
    if [[ $line == "switchyard plugin keygen"* ]]; then
      (cd "$plugin" && eval "$line") | tee "$work/$lang.keygen"
    elif [[ $line == curl* ]]; then
      code=$(cd "$plugin" && eval "$line")
      [ "$code" = 400 ] || { echo "expected the plugin's 400, got $code" >&2; exit 1; }
      echo "$code"
    else
      (cd "$plugin" && SWITCHYARD_ADMIN_TOKEN=$token eval "$line")
    fi
  done <"$work/$lang.block.1"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  pids=()
done

# The example in JavaScript and Python against the fixtures the Rust version passes.
for lang in js python; do
  [[ " ${langs[*]} " == *" $lang "* ]] || continue
  echo "== internal-ids ($lang)"
  ex=plugin-sdk/examples/internal-ids
  switchyard plugin build --dir "$ex/$lang"
  switchyard plugin test --dir "$ex/$lang" --fixtures "$ex/fixtures"
done
echo "test-plugin-kit: ok"
