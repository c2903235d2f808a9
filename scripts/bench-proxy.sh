#!/usr/bin/env bash
# Proxy overhead benchmark (`make bench`): builds optimised, installs nginx and wrk, and prints
# the table recorded in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh nginx-light wrk curl
exec scripts/run-bench.sh bench-proxy "$@"
