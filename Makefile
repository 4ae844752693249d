# posmesh — the two commands that matter: `make run` (the demo on real data) and
# `make test`. Every target builds with ONE cargo profile and ONE set of flags (see
# .cargo/config.toml) into ONE target directory outside the clone, so RocksDB (~26 min to
# compile on 2 cores) is built once per machine and reused by every target and by CI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export CARGO_TARGET_DIR ?= $(HOME)/.cache/posmesh/target
CARGO_FLAGS := --workspace --locked
BIN := $(CARGO_TARGET_DIR)/debug/posmesh
# The bakery's till export (read-only, beside the clone).
DATA ?= ../shared/data/BreadBasket_DMS.csv
# SIGKILL cycles of the crash-durability test (CI: 50; a long run: make test CRASH_CYCLES=1000).
CRASH_CYCLES ?= 50
# The deterministic simulator: `make sim SEEDS=N` sweeps seeds FIRST_SEED.., `make sim SEED=X`
# replays one seed with its event trace; SIM_ARGS passes more flags (--profile day, --canary …,
# --bench). See simulations/src/lib.rs.
SIM := $(CARGO_TARGET_DIR)/debug/posmesh-sim
SEEDS ?= 10000
FIRST_SEED ?= 1
SEED ?=
SIM_ARGS ?=

.PHONY: help setup checkout-stamp build run test bench sim lint fmt

help:
	@echo "make run    — build, then a 3-device store replays the bakery's till export through a crash, a partition and an internet outage (cloud and acquirer cut: cards go offline), uploads to the chain's cloud, forwards offline card payments, closes the last day (Z-report), and reconciles — in network namespaces with real mDNS (root, or unprivileged user namespaces; else loopback)"
	@echo "make test   — build, then run every test (unit, property, simulator seeds, crash durability, bad input, mesh, lab: needs root)"
	@echo "make bench  — benchmarks: P1, P2, idle RSS, catch-up, P4 and shared orders, P3 Raft vs etcd, P7 failover, mesh (BENCH_ARGS='--only p4')"
	@echo "make lint   — cargo fmt --check and clippy with warnings denied (read-only)"
	@echo "make sim    — deterministic simulation: SEEDS=N sweeps (default 10000), SEED=X replays one with its trace"
	@echo "build output: $(CARGO_TARGET_DIR) (first build ~30 min: RocksDB)"

setup:
	@scripts/setup.sh

# Cargo names workspace artifacts by their path inside the workspace, so two checkouts
# sharing $(CARGO_TARGET_DIR) can reuse each other's stale artifacts (file times decide).
# When the target dir was last built from another checkout, touch our sources first.
STAMP := $(CARGO_TARGET_DIR)/.posmesh-checkout

checkout-stamp:
	@mkdir -p "$(CARGO_TARGET_DIR)"
	@if [ "$$(cat "$(STAMP)" 2>/dev/null)" != "$(CURDIR)" ]; then \
		echo "build: new checkout for $(CARGO_TARGET_DIR); rebuilding posmesh's own crates"; \
		find . -path ./target -prune -o \( -name '*.rs' -o -name '*.proto' -o -name 'Cargo.toml' \) -print0 | xargs -0 touch; \
		echo "$(CURDIR)" > "$(STAMP)"; \
	fi

build: setup checkout-stamp
	cargo build $(CARGO_FLAGS) --all-targets

run: build
	scripts/run-demo.sh "$(BIN)" "$(DATA)"

test: build
	POSMESH_CRASH_CYCLES=$(CRASH_CYCLES) POSMESH_BAKERY_CSV="$(abspath $(DATA))" \
		cargo test $(CARGO_FLAGS) --all-targets

bench: build
	"$(BIN)" bench $(BENCH_ARGS)

sim: build
ifneq ($(strip $(SEED)),)
	"$(SIM)" --seed $(SEED) --trace $(SIM_ARGS)
else
	"$(SIM)" --seeds $(SEEDS) --first-seed $(FIRST_SEED) $(SIM_ARGS)
endif

lint: checkout-stamp
	cargo fmt --all -- --check
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

fmt:
	cargo fmt --all
