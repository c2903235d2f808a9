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

# The Python template and example against their shared fixtures under plain CPython (the host
# replays the same files in scripts/test-plugin-kit.sh).
native() {
  PYTHONPATH="$bindings:plugin-sdk/python:$1" .cache/toolchains/py/bin/python \
    plugin-sdk/python/tests/native_fixtures.py "$2"
}
native plugin-sdk/templates/python plugin-sdk/templates/fixtures/template.json
native plugin-sdk/examples/internal-ids/python plugin-sdk/examples/internal-ids/fixtures/internal-ids.json
