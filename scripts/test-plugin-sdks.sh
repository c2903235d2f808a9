#!/usr/bin/env bash
# Unit tests of the JavaScript and Python plugin SDKs (plugin-sdk/js, plugin-sdk/python) under
# plain Node and CPython. The Python tests run against the bindings componentize-py generates from
# plugin-sdk/wit, so the toolchains must be installed (scripts/setup-plugin-toolchains.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

node --test plugin-sdk/js/test/

bindings=$(mktemp -d)
trap 'rm -rf "$bindings"' EXIT
.cache/toolchains/py/bin/componentize-py --wit-path plugin-sdk/wit --world plugin bindings "$bindings" >/dev/null
PYTHONPATH="plugin-sdk/python:$bindings" .cache/toolchains/py/bin/python -m unittest discover -s plugin-sdk/python/tests
