# `make verify` is the gate: formatting, lints, docs and every test. CI runs it through .ci/run.
CARGO ?= cargo

.PHONY: verify fmt clippy doc test bench bench-storage run-verify

verify: fmt clippy doc test

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

test:
	$(CARGO) test --workspace --locked

# Criterion benchmarks (not part of `verify`): prints time per verification and elements/s.
bench:
	$(CARGO) bench -p blockdb-verifier --bench verify

# The storage engine against fjall (BLOCKDB_BENCH_KEYS, BLOCKDB_BENCH_QUICK=1; see the file).
bench-storage:
	$(CARGO) bench -p blockdb-server --bench storage_vs_fjall

# Build the offline verifier; run it as target/release/blockdb-verify.
run-verify:
	$(CARGO) build --release --locked -p blockdb-verifier --bin blockdb-verify
