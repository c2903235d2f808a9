#!/usr/bin/env bash
# Concurrent long streams with pii-redact watching (`make bench-streams`): the table recorded in
# BENCHMARKS.md ("Concurrent watched streams"). 10,000 streams need vm.max_map_count >= 262144.
# Usage: scripts/bench-streams.sh [--streams N] [--event-ms N]
exec "$(dirname "$0")/run-bench.sh" bench-streams "$@"
