# `make verify` is the gate: formatting, lints, docs and every test. CI runs it through .ci/run.
CARGO ?= cargo

.PHONY: verify fmt clippy doc test openapi-tools run bench bench-storage bench-node bench-txn bench-failover bench-etcd bench-scale chaos-long run-verify

verify: fmt clippy doc openapi-tools test

fmt:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --locked

test:
	$(CARGO) test --workspace --locked

# The OpenAPI validator and client generator the OpenAPI test uses, in a virtualenv under target/.
OPENAPI_VENV := target/openapi-venv
openapi-tools: $(OPENAPI_VENV)/.installed
$(OPENAPI_VENV)/.installed:
	python3 -m venv $(OPENAPI_VENV)
	$(OPENAPI_VENV)/bin/pip install --quiet --disable-pip-version-check \
		openapi-spec-validator==0.9.0 openapi-python-client==0.29.1
	touch $@

# Run a single node: data in ./blockdb-data, client address 127.0.0.1:7070.
run:
	$(CARGO) run --release --locked -p blockdb-server --bin blockdb -- serve

# Criterion benchmarks (not part of `verify`): prints time per verification and elements/s.
bench:
	$(CARGO) bench -p blockdb-verifier --bench verify

# The storage engine against fjall (BLOCKDB_BENCH_KEYS, BLOCKDB_BENCH_QUICK=1; see the file).
bench-storage:
	$(CARGO) bench -p blockdb-server --bench storage_vs_fjall

# A real node over HTTP: durable appends/s at 1 and 64 clients, verified reads/s (medians).
bench-node:
	$(CARGO) bench -p blockdb-server --bench node_quick

# Transaction throughput and abort rate, 3 nodes, low and high contention (not part of `verify`).
bench-txn:
	$(CARGO) bench -p blockdb-server --bench txn_quick

# Failover of a 3-node, 2-shard release cluster under write load: kill -9 each shard's leader
# BLOCKDB_FAILOVER_ROUNDS times (default 5) and print every time and the median.
bench-failover:
	BLOCKDB_FAILOVER_ROUNDS=$${BLOCKDB_FAILOVER_ROUNDS:-5} BLOCKDB_LOG_LEVEL=off $(CARGO) test --release --locked -p blockdb-server --test e2e_cluster killing_each_shards_leader -- --nocapture

# BlockDB against etcd in one run (release builds; Debian's etcd-server must be installed, as
# .ci/run does): tables, JSON and a plot in bench-results/. BENCH_ARGS narrows it, e.g.
# BENCH_ARGS="--topologies 1 --concurrency 64,256".
bench-etcd:
	$(CARGO) build --release --locked -p blockdb-server -p blockdb-chaos
	target/release/blockdb-chaos bench $(BENCH_ARGS)

# One node grown to 10^3 .. 10^7 leaves: proof latency and size, memory and disk per size, then
# recovery after kill -9 (release build; SCALE_ARGS narrows it, e.g. SCALE_ARGS="--sizes 1000,100000").
bench-scale:
	$(CARGO) build --release --locked -p blockdb-server -p blockdb-chaos
	target/release/blockdb-chaos scale $(SCALE_ARGS)

# The chaos harness's long mode: every workload under every group of faults, 5 minutes each
# (TIME, SEED, WORKLOADS, NEMESES override; see the script).
chaos-long:
	chaos/scripts/long-runs.sh

# Build the offline verifier; run it as target/release/blockdb-verify.
run-verify:
	$(CARGO) build --release --locked -p blockdb-verifier --bin blockdb-verify
