#!/usr/bin/env bash
# A plugin running to its deadline beside plain requests on one worker (`make bench-stall`): the
# table recorded in BENCHMARKS.md ("Plugin calls off the event loop").
# Usage: scripts/bench-stall.sh [--requests N] [--deadline-ms N]
exec "$(dirname "$0")/run-bench.sh" bench-stall "$@"
