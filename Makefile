# Strait Runs: the two commands are `make dev` (local stack) and `make test` (everything CI runs).
SHELL := /bin/bash
export PYENV_VERSION ?= 3.12.1
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# Tests mostly wait on DynamoDB Local, moto and HTTP, so four workers keep two cores busy.
PYTEST_WORKERS ?= 4

.PHONY: install dev test lint types unit pytest validate build bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

# Debian's Chromium drives the browser test of the streams (tests/e2e/test_stream_browser.py);
# installed once, only when missing (CI runs as root on a clean clone; elsewhere through sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium

install: $(BIN)/.installed node_modules/.installed $(CHROMIUM)

## Start the local stack: API on http://localhost:$${STRAIT_PORT:-8080}. Ctrl-C stops everything.
dev: install
	$(BIN)/python -m straitruns.local.dev

## Lint, types, every test suite and the template validation.
test: install $(SAM_VENV)/.installed lint types pytest validate

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q

validate: $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

build: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam build --template template.yaml

## Trigger BENCH_RUNS (200) runs on a fresh local stack; prints runs/s and p50/p95 trigger-to-completed.
bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(SAM_VENV) node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
