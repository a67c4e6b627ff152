# bgad — the plain commands. `make test` is THE test command (README, .ci/run).
#
#   make deps    install what is missing: apt packages (as root), Python test and build requirements
#   make build   release build of libbgad.so with the Swift runtime linked statically
#   make wheel   dist/bgad-*-manylinux_*.whl: libbgad.so + its OpenBLAS and libpng, installs without Swift
#   make test    deps + build + XCTest (release) + the C example + wheel + pytest against the wheel
#                installed in a fresh venv (temporary folder, no swift on PATH, no BGAD_LIBRARY; .ci/wheel-test)
#                + a short fuzz run (fuzz-ci: FUZZ_CI_SECONDS=30 per target)
#   make py-test pytest in the source tree against .build/release/libbgad.so (development)
#   make c-example  compile examples/c/score.c against libbgad.so (pytest compiles and runs it too)
#   make swift-example  build examples/swift (a package that depends on this one by path); pytest runs
#                it on the file the C example and Python score (python/tests/test_swift_example.py)
#   make demo    the main job: `bgad demo` on ELPV (BGAD vs NFAD), after deps + build
#   make bench   every benchmark under bench/ (ratios against peers measured in the same run)
#   make fuzz    libFuzzer + ASan on the PNG decoder, the model-file and the detector-file readers,
#                FUZZ_SECONDS (60) each from the seeds in Fuzz/Corpus
#   make asan    XCTest and pytest under AddressSanitizer, the threading tests under ThreadSanitizer
#   make robustness  the bad-input table, kill -9 during save, 8 threads (docs/ROBUSTNESS.md)

PYTHON ?= python3
SWIFT  ?= swift
APT_PACKAGES = libopenblas-dev libpng-dev python3-dev
TEST_SCRATCH = .build-test

WHEEL_DIR = dist

.PHONY: deps run-deps apt-deps build wheel test swift-test c-example swift-example py-test wheel-test demo bench clean \
        fuzz-ci fuzz-build fuzz asan asan-swift asan-python tsan robustness

deps: apt-deps
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-test.txt -r requirements-build.txt

run-deps: apt-deps
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements.txt

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi

build:
	$(SWIFT) build -c release --product bgad -Xswiftc -static-stdlib
	@if ldd .build/release/libbgad.so | grep -E 'libswift|libFoundation'; then \
	  echo "error: libbgad.so links the Swift runtime dynamically"; exit 1; fi

swift-test:
	$(SWIFT) test -c release --scratch-path $(TEST_SCRATCH)

CC ?= cc
# The C example (examples/c/score.c): compiled against the header and the built library (rpath),
# then run once without arguments (it must print its usage and exit 2). Its scores are compared
# with Python's by python/tests/test_c_example.py.
c-example: build
	$(CC) -O2 -std=c99 -Wall -Wextra -Werror -ICInterop/include examples/c/score.c \
	  -L.build/release -lbgad -Wl,-rpath,$(CURDIR)/.build/release -o examples/c/score
	@examples/c/score 2>/dev/null; test $$? -eq 2 || { echo "error: examples/c/score without arguments must exit 2"; exit 1; }

# The Swift example, built in release mode like the library; its path reaches pytest through
# BGAD_SWIFT_EXAMPLE (when the variable is set, test_swift_example.py fails rather than skips
# if the program is missing).
SWIFT_EXAMPLE = $(CURDIR)/examples/swift/.build/release/score
swift-example:
	$(SWIFT) build -c release --package-path examples/swift
	@$(SWIFT_EXAMPLE) 2>/dev/null; test $$? -eq 2 || { echo "error: the Swift example without arguments must exit 2"; exit 1; }

py-test: build swift-example
	cd python && BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so BGAD_SWIFT_EXAMPLE=$(SWIFT_EXAMPLE) $(PYTHON) -m pytest -q tests

# pip builds the package in an isolated environment from pyproject.toml (setup.py: swift build,
# then libbgad.so is pointed at scipy-openblas32's OpenBLAS copied beside it); auditwheel vendors
# libpng, sets the manylinux tag and checks it.
wheel: build
	rm -rf build $(WHEEL_DIR)/bgad-*.whl
	$(PYTHON) -m pip wheel -q --disable-pip-version-check --no-deps -w build/wheel-raw .
	$(PYTHON) -m auditwheel repair -w $(WHEEL_DIR) build/wheel-raw/bgad-*.whl
	$(PYTHON) -m auditwheel show $(WHEEL_DIR)/bgad-*.whl
	@ls -l $(WHEEL_DIR)/bgad-*.whl

wheel-test:
	PYTHON=$(PYTHON) BGAD_SWIFT_EXAMPLE=$(SWIFT_EXAMPLE) .ci/wheel-test $(WHEEL_DIR)

test: deps build swift-test c-example swift-example wheel wheel-test fuzz-ci

DEMO_ARGS ?=
demo: run-deps build
	BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so PYTHONPATH=python $(PYTHON) -m bgad demo $(DEMO_ARGS)

bench: build
	for b in bench/*.py; do echo "== $$b"; BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so PYTHONPATH=python $(PYTHON) $$b || exit 1; done

# Fuzzing (Fuzz/: a package of its own). SwiftPM names an executable's entry point itself, so
# the targets are instrumented with -sanitize-coverage (what -sanitize=fuzzer adds) and linked
# with libFuzzer's no-main runtime; each target's main calls LLVMFuzzerRunDriver. A run fails
# on a crash, a sanitizer report, an input taking over 2 s or an allocation over 1 GB.
CLANG_RT = $(shell dirname $$(dirname $$(readlink -f $$(command -v $(SWIFT)))))/lib/clang/*/lib/linux
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = PNG:png ModelFile:model DetectorFile:detector
FUZZ_FLAGS = -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
  -Xcc -fsanitize=fuzzer-no-link,address -Xlinker $(firstword $(wildcard $(CLANG_RT)/libclang_rt.fuzzer_no_main-x86_64.a)) \
  -Xlinker -lstdc++

# The short run of `make test` (CI): 30 s per target after the fuzzers' build.
FUZZ_CI_SECONDS ?= 30
fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

fuzz-build:
	cd Fuzz && $(SWIFT) build -c release --scratch-path ../.build-fuzz $(FUZZ_FLAGS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do n=$${t%%:*}; d=$${t##*:}; mkdir -p .fuzz-work/$$d; echo "== Fuzz$$n ($(FUZZ_SECONDS) s)"; \
	  ASAN_OPTIONS=detect_leaks=0 .build-fuzz/release/Fuzz$$n .fuzz-work/$$d Fuzz/Corpus/$$d -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=2 -malloc_limit_mb=1024 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 -artifact_prefix=.fuzz-work/ \
	    > .fuzz-work/$$d.log 2>&1; rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)|DONE' .fuzz-work/$$d.log; \
	  test $$rc -eq 0 || { echo "Fuzz$$n found a problem: see .fuzz-work/$$d.log and the artifact in .fuzz-work/"; exit 1; }; done

# AddressSanitizer: XCTest and pytest against a libbgad.so built with ASan (the runtime
# preloaded into python), release builds (a debug build's training tests take too long; ASan
# checks every load and store, also where -Ounchecked dropped Swift's bounds checks).
# ThreadSanitizer: the tests that run threads (parallel regions, concurrent saves, 8 threads).
ASAN_RT = $(firstword $(wildcard $(CLANG_RT)/libclang_rt.asan-x86_64.so))
asan: asan-swift asan-python tsan

asan-swift:
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 $(SWIFT) test -c release --sanitize=address --scratch-path .build-asan

# Not under ASan: the tests that compile and link a C program against libbgad.so (an
# ASan-instrumented library needs the program linked with -fsanitize=address).
ASAN_PYTEST_ARGS ?= -k 'not test_c_example and not test_c_program_links_the_installed_library'
asan-python:
	$(SWIFT) build -c release --product bgad --sanitize=address --scratch-path .build-asan-lib
	cd python && ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:verify_asan_link_order=0 LD_PRELOAD=$(ASAN_RT) \
	  BGAD_LIBRARY=$(CURDIR)/.build-asan-lib/release/libbgad.so $(PYTHON) -m pytest -q -p no:cacheprovider tests $(ASAN_PYTEST_ARGS)

tsan:
	$(SWIFT) test -c release --sanitize=thread --scratch-path .build-tsan --filter 'ParallelTests|testConcurrent'

robustness: build
	BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so PYTHONPATH=python $(PYTHON) bench/robustness.py

clean:
	rm -rf .build $(TEST_SCRATCH) build $(WHEEL_DIR) python/bgad/libbgad.so examples/c/score .build-fuzz .build-asan \
	  .build-asan-lib .build-tsan .fuzz-work
