# corepool front door. `make test` and `make bench` are the two commands; both run `make deps`.
SHELL := /bin/bash
JOBS ?= $(shell nproc)

# Debian packages a fresh machine may lack: deps/*.txt, one package a line (# comments).
# deps/base.txt builds and tests; each other file names what one part needs (peers for the
# benchmarks, DPDK, ...).
DEPS := $(shell sed -e 's/\#.*//' deps/*.txt | tr -s ' \n' ' ')

.PHONY: all deps test bench bench-micro test-asan test-tsan test-clang build-% clean format

all: test

deps:
	@missing=""; \
	for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "deps: missing packages. Run:"; \
	  echo "  sudo apt-get install -y$$missing"; \
	  exit 1; \
	fi

build-%: deps
	cmake --preset $*
	cmake --build --preset $* -j $(JOBS)

test: build-debug
	ctest --preset debug -j $(JOBS)

test-asan: build-asan
	ctest --preset asan -j $(JOBS)

test-tsan: build-tsan
	ctest --preset tsan -j $(JOBS)

test-clang: build-clang
	ctest --preset clang -j $(JOBS)

# corepool-bench's default set: every pool beside every peer this machine has (see
# docs/bench.md); BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS=--quick`.
# The default set fits in about a minute on 2 cores: 5 repetitions of 0.03 s per figure, and
# DPDK's rings without a cache are left out of the multi-thread rows (W4/W5), where every
# thread spins on a preempted producer and one run takes tens of minutes (docs/bench.md).
BENCH_ARGS ?= --duration 0.03 --filter '^(?!W[45]/[^/]+/dpdk-[a-z]+-nocache)'
bench: build-release
	@./build/release/tools/corepool-bench/corepool-bench $(BENCH_ARGS)
	@echo "Tables and plots: results/latest/index.html (JSON, CSV and SVG files beside it)"

# The per-pool Google Benchmark micro-benchmarks (bench/*).
bench-micro: build-release
	@set -e; for b in $$(cat build/release/benches.txt); do \
	  echo "== $$b"; ./build/release/bench/$$b --benchmark_min_time=0.2 --benchmark_repetitions=5 \
	    --benchmark_report_aggregates_only=true; \
	done

format:
	clang-format -i $$(git ls-files '*.h' '*.hpp' '*.cpp' '*.c')

clean:
	rm -rf build
