#!/usr/bin/env bash
# What per-tenant limits add to a request (`make bench-limits`): no tenant, a tenant without
# limits, generous limits on the memory store and on a real redis-server, side by side in one run;
# the table recorded in BENCHMARKS.md ("Limits on the request path").
# Usage: scripts/bench-limits.sh [--seconds N] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh wrk curl
exec scripts/run-bench.sh bench-limits "$@"
