#!/usr/bin/env bash
# Installs what building and testing Switchyard needs on a fresh Debian machine, and skips what is
# already there: apt packages, the Rust wasm target and the JS/Python plugin toolchains. (The
# model: scripts/fetch-model.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."

# What every build needs (llama.cpp: cmake and a C++ compiler; bindgen: libclang; scripts: curl),
# redis-server for the usage ledger's tests (each starts its own on a unix socket; nothing here
# starts the packaged service), Node and a Python venv for the JavaScript and Python plugin
# toolchains, plus whatever the caller names.
need_apt=()
for pkg in cmake g++ libclang1-14 libclang-common-14-dev curl redis-server nodejs python3-venv "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Plugins: the wasm target, and the JavaScript and Python plugin toolchains (pinned, into
# .cache/toolchains; node, npm and python3 must be on the machine).
scripts/setup-wasm.sh
scripts/setup-plugin-toolchains.sh
