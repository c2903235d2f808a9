# The targets here are what the README's quick start and CI run; nothing else calls cargo directly.
.PHONY: run test check fmt clippy bench

# Build and start the main job: the proxy with the example config.
run:
	scripts/run.sh

# Every test, the slow tiers included. `.ci/run` calls this.
test:
	scripts/test.sh

# What a commit must pass besides the tests.
check: fmt clippy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

bench:
	scripts/bench-proxy.sh
