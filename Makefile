# The targets here are what the README's quick start and CI run; nothing else calls cargo directly.
.PHONY: run example-replicas test check setup fmt clippy bench bench-streams bench-stall bench-limits bench-shared-cache bench-traces soak fuzz fetch-model test-inference bench-inference gpu-check-inference

# Build and start the main job: the inference service on the embedded default model and the proxy
# with the example config in front of it.
run:
	scripts/run.sh

# Three proxies sharing one Redis on :8080-:8082 (README, "Three replicas and Redis").
example-replicas:
	scripts/example-replicas.sh

# Every test, the slow tiers included. `.ci/run` calls this.
test:
	scripts/test.sh

# What a commit must pass besides the tests (clippy runs build scripts: llama.cpp needs cmake).
check: setup fmt clippy

setup:
	scripts/setup.sh

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	scripts/bench-proxy.sh

# 10,000 concurrent long streams through the default chain, with and without pii-redact watching.
bench-streams:
	scripts/bench-streams.sh

# Plain requests beside a plugin that runs to its deadline on the same worker: p50/p99/max.
bench-stall:
	scripts/bench-stall.sh

# Per-tenant limits on the request path: no tenant, no limits, memory store, redis-server.
bench-limits:
	scripts/bench-limits.sh

# Response-cache hits from the replica's own cache and from the shared level in Redis.
bench-shared-cache:
	scripts/bench-shared-cache.sh

# OpenTelemetry tracing on the request path: off, sample_ratio 1.0 and 0.01, to a counting sink.
bench-traces:
	scripts/bench-traces.sh

# The default chain under mixed load for 10 minutes (scripts/soak.sh SECONDS for another length):
# upstream killed and restarted, 20 hot swaps; fails on a failed request, a PII leak, RSS growth.
soak:
	scripts/soak.sh

# Coverage-guided fuzzing of the four targets in fuzz/ (nightly, cargo-fuzz, libFuzzer), each for
# FUZZ_SECONDS (scripts/fuzz.sh TARGET SECONDS for one). `make test` replays their seed corpora and
# a few thousand mutations on stable (tests/tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh all $(FUZZ_SECONDS)

# The embedded default model (SmolLM2-135M-Instruct Q4_1) into .cache/models/.
fetch-model:
	scripts/fetch-model.sh

# The inference service's tests, the model tests and the OpenAI Python client included.
test-inference:
	scripts/test-inference.sh

# switchyard-inference against llama.cpp's llama-server; prints a table for BENCHMARKS.md.
bench-inference:
	scripts/bench-inference.sh

# On a machine with an NVIDIA GPU: CUDA build, smoke test and benchmark with --n-gpu-layers 99.
gpu-check-inference:
	scripts/gpu-check.sh
