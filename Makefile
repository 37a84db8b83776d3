# The project's commands. Every target sets up what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: help serve test test-fast lint format clean

help:
	@echo "make serve   run the endpoint locally on http://127.0.0.1:$(PORT) (embedded DynamoDB)"
	@echo "make test    lint, then the whole test suite"
	@echo "make lint    ruff + mypy"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(VENV)/.installed
node: node_modules/.installed

serve: $(VENV)/.installed
	PORT=$(PORT) PYTHONPATH=lambda_src:. $(PY) -m heartbeat_local

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(VENV)/.installed node_modules/.installed lint
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest tests/unit

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache .hypothesis
