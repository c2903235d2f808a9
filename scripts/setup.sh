#!/usr/bin/env bash
# Installs what building and testing Switchyard needs on a fresh Debian machine, and skips what is
# already there: apt packages, the Rust wasm target, and the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Plugins: the wasm target.
scripts/setup-wasm.sh
