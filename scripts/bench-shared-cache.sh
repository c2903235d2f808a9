#!/usr/bin/env bash
# What a response-cache hit costs from this replica's own cache and from the shared level in
# Redis (`[cache] shared = true`), next to a miss (`make bench-shared-cache`); the table recorded in
# BENCHMARKS.md ("Shared response cache").
# Usage: scripts/bench-shared-cache.sh [--requests N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/run-bench.sh bench-shared-cache "$@"
