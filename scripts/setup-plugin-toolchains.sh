#!/usr/bin/env bash
# Installs the JavaScript and Python plugin toolchains, pinned, into .cache/toolchains/ of the
# repository (git ignores it), and skips what is already there: componentize-js 0.23.0 and jco from
# npm, componentize-py 0.25.1 from PyPI in its own virtual environment. Nothing goes into the
# system's global npm or pip. scripts/build-lang-plugins.sh uses them; see docs/plugins.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# The npm pins are in scripts/plugin-toolchain/package.json; these say what to expect.
COMPONENTIZE_JS=0.23.0
JCO=1.15.1
COMPONENTIZE_PY=0.25.1
root=.cache/toolchains

# node/npm and python3's venv from apt when the machine has none (a machine with its own node,
# e.g. from nodesource, keeps it: Debian's npm package would conflict with it).
need_apt=()
command -v npm >/dev/null || need_apt+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# JavaScript: a private npm prefix installed from the committed lock
# (scripts/plugin-toolchain/package-lock.json, made by npm from the pins below), so every machine
# gets the same dependency tree.
js="$root/js"
have_js() {
  [ -x "$js/node_modules/.bin/componentize-js" ] &&
    cmp -s scripts/plugin-toolchain/package-lock.json "$js/package-lock.json" &&
    node -e "process.exit(require('./$js/node_modules/@bytecodealliance/componentize-js/package.json').version === '$COMPONENTIZE_JS' ? 0 : 1)" 2>/dev/null
}
if ! have_js; then
  echo "setup: installing componentize-js $COMPONENTIZE_JS and jco $JCO into $js"
  mkdir -p "$js"
  cp scripts/plugin-toolchain/package.json scripts/plugin-toolchain/package-lock.json "$js/"
  npm ci --prefix "$js" --no-audit --no-fund --loglevel=error >/dev/null
fi

# Python: a virtual environment that holds only componentize-py.
py="$root/py"
have_py() {
  [ -x "$py/bin/componentize-py" ] && "$py/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY"
}
if ! have_py; then
  echo "setup: installing componentize-py $COMPONENTIZE_PY into $py"
  python3 -m venv "$py"
  "$py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
fi
