# rtdp: the two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
RTDP := $(VENV)/bin/rtdp

.PHONY: bench demo test test-drills test-clock-ahead setup system-deps jars stack-up stack-down stack-status dagster lint lint-check clean help

help:
	@echo "make demo   - set up, then the whole platform on three workloads: summary and URLs (Ctrl-C stops it)"
	@echo "make test   - set up, then run the test suite against a real stack"
	@echo "make dagster - the Dagster UI and daemon on the rtdp code location"
	@echo "make test-drills - only the fault-drill tests (a cluster-profile stack of their own; part of make test)"
	@echo "make test-clock-ahead - the test suite with every clock of the stack a year ahead (no test may depend on the date)"
	@echo "make bench  - every benchmark scenario; results in bench/results/"
	@echo "make lint   - ruff (lint and format check) and pyright, as make test does first"
	@echo "make stack-down - stop every service the stack started"

# DEMO_ARGS, e.g. `make demo DEMO_ARGS="--duration 600 --small"`.
demo: setup
	$(RTDP) demo $(DEMO_ARGS)

# What `make lint` checks, then every test, the fault drills included (CI runs exactly this).
# Two workers, a module at a time each (module fixtures start once), in collection order (long modules
# first): the suite's JVMs and services wait on each other often enough that one worker left a core idle.
PYTEST_PARALLEL ?= -n 2 --dist loadscope --no-loadscope-reorder
test: setup lint-check
	$(VENV)/bin/pytest $(PYTEST_PARALLEL)

# Only the fault drills (a Kafka node, the stream driver, the realtime TSDB twice) on a cluster of their own.
test-drills: setup
	$(VENV)/bin/pytest -m drills

# Every clock of the stack (Python, JVMs, VictoriaMetrics) moved ahead; CLOCK_SHIFT=+730d for two years.
CLOCK_SHIFT ?= +365d
test-clock-ahead: setup
	tests/clock_ahead.sh $(CLOCK_SHIFT)

setup: $(VENV)/.synced system-deps jars

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Re-sync only when the lock or project metadata changed.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

system-deps:
	@command -v java >/dev/null || { echo "rtdp: java not found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	@command -v mvn >/dev/null || { echo "rtdp: mvn not found: install Maven (apt-get install maven)" >&2; exit 1; }
	@command -v victoria-metrics >/dev/null || { \
		echo "installing victoria-metrics from Debian ..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq victoria-metrics >/dev/null; }
	@command -v chromium >/dev/null || { \
		echo "installing chromium from Debian (UI checks and screenshots) ..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

jars: $(VENV)/.synced
	$(RTDP) setup

# Benchmarks never run inside `make test`.
bench: setup
	$(VENV)/bin/python -m bench

stack-up: setup
	$(RTDP) stack up

stack-down:
	$(RTDP) stack down

stack-status:
	$(RTDP) stack status

dagster: setup
	$(RTDP) stack up
	$(RTDP) dagster

lint: setup lint-check

# The formatter owns the layout; pyright checks the package, the tests and the benchmarks.
lint-check:
	$(VENV)/bin/ruff check rtdp_dagster tests bench
	$(VENV)/bin/ruff format --check rtdp_dagster tests bench
	$(VENV)/bin/pyright rtdp_dagster tests bench

clean:
	-$(RTDP) stack down
	rm -rf .rtdp
