#!/usr/bin/env bash
# GPU check for the inference service, meant for a fresh machine with an NVIDIA GPU: reports the
# GPU and CUDA toolkit, builds switchyard-inference with `--features cuda`, fetches the model, and
# runs the benchmark (switchyard-inference and a CUDA llama-server) with --n-gpu-layers 99.
# Writes gpu-check.md and logs under $OUT (default .cache/gpu-check). Each step says what it needs.
#   SWITCHYARD_MODEL=path.gguf   use this model instead of fetching it (for machines offline)
#   THREADS (default: all cores)
#   SKIP_PEER=1   no llama-server CUDA build (saves ~5 min); the benchmark then measures only ours
# Offline machines: cargo needs the crates (a filled ~/.cargo/registry, or `cargo vendor` plus
# CARGO_NET_OFFLINE=true), the model (SWITCHYARD_MODEL) and, for the peer, the llama-cpp-python
# sdist already in .cache/peer/. Rough times on 16 cores: CUDA build of llama.cpp for one
# architecture 3-6 min, the peer as much again, the benchmark 2-3 min.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(pwd)/.cache/gpu-check}"
mkdir -p "$OUT"
report="$OUT/gpu-check.md"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(pwd)/target}"
: >"$report"
say() { echo "$*" | tee -a "$report" >&2; }
step() { # step NAME COMMAND...: runs it with its log under $OUT, records ok/FAILED and the time.
  local name=$1; shift
  local t0=$SECONDS
  if "$@" >"$OUT/$name.log" 2>&1; then say "- $name: ok ($((SECONDS - t0)) s)"; return 0; fi
  say "- $name: FAILED ($((SECONDS - t0)) s), last lines of $name.log:"
  tail -n 15 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$report" >&2
  return 1
}

say "# switchyard-inference GPU check ($(date -u +%FT%TZ))"
say "- host: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
if ! command -v nvidia-smi >/dev/null; then say "- nvidia-smi: not found: no NVIDIA driver here"; exit 1; fi
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -1)
say "- GPU: $gpu"
cap=$(echo "$gpu" | awk -F', ' '{print $4}' | tr -d '.')
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if [ -z "$NVCC" ]; then
  say "- nvcc: MISSING: no CUDA toolkit, so no CUDA build is possible here (the driver alone is not"
  say "  enough: llama.cpp's CUDA back end is compiled by nvcc). Install one (e.g. Debian's"
  say "  nvidia-cuda-toolkit, or NVIDIA's cuda-toolkit-12-x) and run again."
  exit 1
fi
export PATH="$(dirname "$NVCC"):$PATH"
export CUDA_PATH="${CUDA_PATH:-$(dirname "$(dirname "$NVCC")")}"
say "- nvcc: $NVCC ($("$NVCC" --version | grep -o 'release [0-9.]*'))"
for tool in cargo cmake; do
  command -v "$tool" >/dev/null || { say "- $tool: MISSING"; exit 1; }
done
say "- cargo: $(cargo --version)"

# Compile CUDA kernels for this GPU only (llama.cpp otherwise builds for ~8 architectures, which
# takes far longer). CMake reads the toolchain file before ggml picks its default list.
toolchain="$OUT/cuda-arch.cmake"
echo "set(CMAKE_CUDA_ARCHITECTURES ${cap:-90}-real)" >"$toolchain"
export CMAKE_TOOLCHAIN_FILE="$toolchain"
say "- CUDA architectures: ${cap:-90}-real"

model="${SWITCHYARD_MODEL:-}"
if [ -z "$model" ]; then
  step fetch-model scripts/fetch-model.sh || { say "  (offline? set SWITCHYARD_MODEL to a copy of the GGUF)"; exit 1; }
  model=$(tail -n 1 "$OUT/fetch-model.log")
fi
say "- model: $model"

step build-cuda cargo build -p switchyard-inference --features cuda \
  --bin switchyard-inference --bin bench-inference || exit 1
bin="$CARGO_TARGET_DIR/debug"

# Smoke test: the server starts with every layer on the GPU and answers.
smoke() {
  # RUST_LOG=info lets llama.cpp's own log (device, offloaded layers) through.
  RUST_LOG=info NO_COLOR=1 "$bin/switchyard-inference" --model "$model" --listen 127.0.0.1:18481 --n-gpu-layers 99 \
    --parallel 2 --ctx-size 4096 >"$OUT/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -fs http://127.0.0.1:18481/healthz && break; sleep 0.2; done
  curl -fsS http://127.0.0.1:18481/v1/chat/completions -H 'content-type: application/json' \
    -d '{"messages":[{"role":"user","content":"What is the capital of France?"}],"temperature":0,"max_tokens":24}'
  local rc=$?
  kill "$pid"; wait "$pid" 2>/dev/null
  grep -i -E "offload|CUDA|GPU" "$OUT/server.log" | head -n 20
  return $rc
}
step smoke-gpu smoke || exit 1
say "  answer: $(grep -o '"content":"[^"]*"' "$OUT/smoke-gpu.log" | head -1)"

peer_args=()
if [ "${SKIP_PEER:-0}" = 1 ]; then
  say "- llama-server (CUDA): skipped (SKIP_PEER=1)"
else
  step build-peer-cuda env PEER_CUDA=1 JOBS="$(nproc)" scripts/build-llama-server.sh || exit 1
  peer_args=(--peer-bin "$(tail -n 1 "$OUT/build-peer-cuda.log")")
fi
threads="${THREADS:-$(nproc)}"
bench() {
  "$bin/bench-inference" --server-bin "$bin/switchyard-inference" "${peer_args[@]}" \
    --model "$model" --threads "$threads" --parallel 8 --ctx-size 16384 --n-gpu-layers 99 \
    --gen-tokens 128 --reps 3
}
if step bench-gpu bench; then
  say ""
  say "## Benchmark, GPU ($gpu), --n-gpu-layers 99, --threads $threads"
  grep -v '^bench:' "$OUT/bench-gpu.log" | tee -a "$report" >&2
fi
