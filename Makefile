# bgad — the plain commands. `make test` is THE test command (README, .ci/run).
#
#   make deps    install what is missing: apt packages (as root), Python test and build requirements
#   make build   release build of libbgad.so with the Swift runtime linked statically
#   make wheel   dist/bgad-*-manylinux_*.whl: libbgad.so + its OpenBLAS and libpng, installs without Swift
#   make test    deps + build + XCTest (release) + the C example + wheel + pytest against the wheel
#                installed in a fresh venv (temporary folder, no swift on PATH, no BGAD_LIBRARY; .ci/wheel-test)
#   make py-test pytest in the source tree against .build/release/libbgad.so (development)
#   make c-example  compile examples/c/score.c against libbgad.so (pytest compiles and runs it too)
#   make swift-example  build examples/swift (a package that depends on this one by path); pytest runs
#                it on the file the C example and Python score (python/tests/test_swift_example.py)
#   make demo    the main job: `bgad demo` on ELPV (BGAD vs NFAD), after deps + build
#   make bench   every benchmark under bench/ (ratios against peers measured in the same run)

PYTHON ?= python3
SWIFT  ?= swift
APT_PACKAGES = libopenblas-dev libpng-dev python3-dev
TEST_SCRATCH = .build-test

WHEEL_DIR = dist

.PHONY: deps run-deps apt-deps build wheel test swift-test c-example swift-example py-test wheel-test demo bench clean

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

test: deps build swift-test c-example swift-example wheel wheel-test

DEMO_ARGS ?=
demo: run-deps build
	BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so PYTHONPATH=python $(PYTHON) -m bgad demo $(DEMO_ARGS)

bench: build
	for b in bench/*.py; do echo "== $$b"; BGAD_LIBRARY=$(CURDIR)/.build/release/libbgad.so PYTHONPATH=python $(PYTHON) $$b || exit 1; done

clean:
	rm -rf .build $(TEST_SCRATCH) build $(WHEEL_DIR) python/bgad/libbgad.so examples/c/score
