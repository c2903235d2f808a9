#!/usr/bin/env bash
# What OpenTelemetry tracing adds to a request (`make bench-traces`): off, sample 1.0 and 0.01,
# exporting to counting OTLP/HTTP sinks in the benchmark; the table recorded in BENCHMARKS.md
# ("Tracing on the request path").
# Usage: scripts/bench-traces.sh [--seconds N] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh wrk curl
exec scripts/run-bench.sh bench-traces "$@"
