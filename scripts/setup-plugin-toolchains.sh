#!/usr/bin/env bash
# The toolchains for JavaScript and Python plugins, pinned, into .cache/toolchains (git ignores
# .cache/): npm @bytecodealliance/componentize-js (its `componentize-js` CLI builds a component
# from a JS module) and PyPI componentize-py (in a venv). Idempotent: a pinned version already
# there is kept. `switchyard plugin build` looks here first (see proxy/src/kit/toolchain.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_JS=0.23.0
COMPONENTIZE_PY=0.25.1
dir=.cache/toolchains

js="$dir/js/node_modules/@bytecodealliance/componentize-js/package.json"
if ! grep -q "\"version\": \"$COMPONENTIZE_JS\"" "$js" 2>/dev/null; then
    command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 1; }
    mkdir -p "$dir/js"
    npm install --prefix "$dir/js" --no-audit --no-fund --save-exact \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS"
fi

py="$dir/py/bin/componentize-py"
if ! "$dir/py/bin/pip" show componentize-py 2>/dev/null | grep -qx "Version: $COMPONENTIZE_PY"; then
    python3 -m venv "$dir/py"
    "$dir/py/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY"
fi
echo "plugin toolchains: componentize-js $COMPONENTIZE_JS, componentize-py $COMPONENTIZE_PY in $dir"
