# mcpfence: `make demo` runs the proxy in front of the demo servers; `make test` runs the tests.
# Both create the virtualenv (.venv) and install what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck pytest policy-test bench conformance clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mcpfence demo

test: lint typecheck policy-test pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The shipped policy packs must load cleanly and pass their own PolicyTest cases.
policy-test: $(STAMP)
	$(BIN)/mcpfence check policies/ examples/demo.yaml
	$(BIN)/mcpfence test policies/

# The official MCP conformance suite: direct, through mcpfence, and through 3 replicas behind nginx
# (Node 22 installs locally; the cluster run starts redis-server and nginx).
conformance: $(STAMP)
	npm ci --prefix tests/e2e/conformance --no-audit --no-fund
	$(BIN)/python tests/e2e/conformance/run.py --proxy --cluster

# Throughput and latency beside nginx and a bare forwarder (installs nginx and wrk).
bench: $(STAMP)
	command -v nginx >/dev/null && command -v wrk >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq nginx wrk)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
