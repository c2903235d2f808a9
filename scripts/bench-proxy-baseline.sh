#!/usr/bin/env bash
# The proxy benchmark against an older commit in one run (issue 11's "no worse than before"):
# checks REV out in a worktree of its own, builds its proxy, mock and plugins as run-bench.sh
# builds this one (its own target directory: about 20 minutes on 2 cores the first time), puts
# its `switchyard`, `switchyard.toml`, components and commit id in one directory, and runs
# `bench-proxy --baseline` on it with the remaining arguments.
# Usage: scripts/bench-proxy-baseline.sh REV [bench-proxy args, e.g. --seconds 5 --rounds 3]
# BASELINE_ROOT (default .cache/baseline) holds the worktree (ROOT/REV/src), the target directory
# (ROOT/target) and the assembled build (ROOT/REV/build).
set -euo pipefail
cd "$(dirname "$0")/.."
rev="$(git rev-parse --short "${1:?usage: scripts/bench-proxy-baseline.sh REV [ARGS...]}")"
shift
root="$(realpath -m "${BASELINE_ROOT:-.cache/baseline}")"
src="$root/$rev/src" build="$root/$rev/build" target="$(realpath -m "$root/target")"
scripts/setup.sh nginx-light wrk curl
scripts/setup-wasm.sh
if [ ! -e "$src/.git" ]; then
  mkdir -p "$root/$rev"
  git worktree add --detach -f "$src" "$rev"
fi
(cd "$src" && CARGO_TARGET_DIR="$target" cargo build --locked -p switchyard --bin switchyard \
  -p switchyard-tests --bin mock-upstream \
  --config 'profile.dev.package.switchyard.opt-level=3' \
  --config 'profile.dev.package.switchyard-tests.opt-level=3')
# The components its tests/build.rs wrote (the newest build directory of that crate).
components="$(ls -td "$target"/debug/build/switchyard-tests-*/out/components | head -1)"
rm -rf "$build" && mkdir -p "$build/plugins"
cp "$target/debug/switchyard" "$src/switchyard.toml" "$build/"
for plugin in noop pii_redact tier_router cache_policy; do
  cp "$components/$plugin.wasm" "$build/plugins/"
done
echo "$rev" > "$build/commit"
exec scripts/run-bench.sh bench-proxy --baseline "$build" "$@"
