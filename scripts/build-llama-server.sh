#!/usr/bin/env bash
# Builds llama.cpp's own llama-server, the benchmark peer, from the full llama.cpp tree vendored in
# the llama-cpp-python sdist on PyPI (llama-cpp-sys-2's vendored tree has no tools/server).
# Everything lands in .cache/peer/ (git-ignored). Does nothing when the binary is there. Prints the
# binary's path on stdout; logs go to stderr.
#   PEER_CUDA=1   build with the CUDA back end (needs nvcc)
#   JOBS=N        parallel compile jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.3.36   # its CHANGELOG: llama.cpp ggml-org/llama.cpp@0c1e57098
dir=.cache/peer
src="$dir/llama_cpp_python-$VERSION/vendor/llama.cpp"
build="$dir/build-cpu"
cuda=OFF
if [ "${PEER_CUDA:-0}" = 1 ]; then build="$dir/build-cuda"; cuda=ON; fi
bin="$build/bin/llama-server"

if [ -x "$bin" ]; then echo "$(pwd)/$bin"; exit 0; fi

mkdir -p "$dir"
if [ ! -d "$src" ]; then
  sdist="$dir/llama_cpp_python-$VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    echo "build-llama-server: downloading the llama-cpp-python==$VERSION sdist" >&2
    python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check \
      -d "$dir" "llama-cpp-python==$VERSION" >&2
  fi
  tar xzf "$sdist" -C "$dir"
fi

# GGML_NATIVE=OFF gives the same ISA level (AVX2/FMA/F16C, no AVX-512) that llama-cpp-sys-2 builds
# with, so the comparison is between servers, not instruction sets. No web UI and no downloads.
echo "build-llama-server: configuring (CUDA $cuda)" >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_CUDA="$cuda" \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF >&2
echo "build-llama-server: building llama-server (takes a while)" >&2
cmake --build "$build" --target llama-server -j "${JOBS:-2}" >&2
echo "$(pwd)/$bin"
