#!/usr/bin/env bash
# Builds the JavaScript and Python test plugins (plugins/polyglot/*) into components with the
# pinned toolchains of scripts/setup-plugin-toolchains.sh, into .cache/polyglot/ (or $1). A
# component is rebuilt only when its sources, the WIT or the toolchain changed: the sha256 of all
# of them sits beside it. Prints the directory. The tests (tests/src/polyglot.rs) call it.
# Usage: scripts/build-lang-plugins.sh [OUT_DIR [--next]]; --next also builds a second version of each.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.cache/polyglot}"
mkdir -p "$out"
tools=.cache/toolchains
[ -x "$tools/js/node_modules/.bin/componentize-js" ] && [ -x "$tools/py/bin/componentize-py" ] ||
  scripts/setup-plugin-toolchains.sh >&2

# build NAME KIND SRC_DIR: KIND is js or py.
build() {
  local name=$1 kind=$2 src=$3 key
  key=$( (cat plugin-sdk/wit/*.wit; find "$src" -type f \( -name '*.js' -o -name '*.py' \) | sort | xargs cat;
    echo "$kind"; cat "$tools/js/package.json" 2>/dev/null; "$tools/py/bin/componentize-py" --version) | sha256sum | cut -d' ' -f1)
  if [ -f "$out/$name.wasm" ] && [ "$(cat "$out/$name.key" 2>/dev/null)" = "$key" ]; then
    return
  fi
  echo "building $name ($kind)" >&2
  case $kind in
    # Every optional feature disabled: the component imports only the host interface.
    js) "$tools/js/node_modules/.bin/componentize-js" "$src/hello.js" --wit plugin-sdk/wit \
          --world-name plugin -d stdio random clocks http fetch-event -o "$out/$name.wasm.tmp" >&2 ;;
    py) "$tools/py/bin/componentize-py" -d plugin-sdk/wit -w plugin componentize -p "$src" app \
          -o "$out/$name.wasm.tmp" >&2 ;;
  esac
  mv "$out/$name.wasm.tmp" "$out/$name.wasm"
  echo "$key" >"$out/$name.key"
}

build js_hello js plugins/polyglot/js-hello
build py_hello py plugins/polyglot/py-hello
# --next: a second version of each (another refused word, so other source and another snapshot,
# the same toolchain), for the benchmark of compiling a new version (scripts/bench-lang.sh).
if [ "${2:-}" = "--next" ]; then
  for lang in js py; do
    mkdir -p "$out/next/$lang-hello"
    for f in plugins/polyglot/$lang-hello/*."$lang"; do
      sed 's/forbidden/verboten/g' "$f" >"$out/next/$lang-hello/$(basename "$f")"
    done
    build "${lang}_hello_next" "$lang" "$out/next/$lang-hello"
  done
fi
echo "$out"
