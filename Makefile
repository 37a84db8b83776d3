# The project's commands. Every target sets up what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

CDK := node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting
# `make synth` with no arguments uses this documented example; deploy needs your own (see docs/deploy.md).
EXAMPLE_CONTEXT := -c endpointType=private -c vpcEndpointIds=vpce-0123456789abcdef0
CONTEXT ?=
REQUIRE_APPROVAL ?=

.PHONY: help venv node constraints serve test test-fast test-unit test-integration test-endtoend test-infra test-docs fuzz soak bench cost simulate lint format synth deploy diff clean

help:
	@echo "make serve   run the endpoint locally on http://127.0.0.1:$(PORT) (embedded DynamoDB on :8081)"
	@echo "make test    lint, then the whole test suite (every tier below)"
	@echo "make test-fast  tests/unit alone: pure, no AWS, seconds"
	@echo "make test-integration  tests/integration: the handler, store and sweeper in process on moto"
	@echo "make test-endtoend  tests/endtoend: make serve started as a process, real clients, the wheel in a fresh venv"
	@echo "make test-infra  tests/infra: CDK synth, cdk-nag, cfn-lint"
	@echo "make test-docs  tests/docs: the commands the docs show"
	@echo "make lint    ruff + mypy"
	@echo "make fuzz    the long generated-input run (50,000 examples per property)"
	@echo "make bench   measure requests per heartbeat, handler overhead, cold start, sweeper scale, throughput"
	@echo "make cost    regenerate docs/cost.md from the bench's figures and the price table"
	@echo "make soak    the full load test (16 clients, 20,000 heartbeats, 1,000 runners)"
	@echo "make simulate  the fleet simulator's full grid as a table; at N = 100 it rewrites docs/reliability.md's results and chart"
	@echo "make synth   synthesize the CloudFormation template into cdk.out/ (example access context)"
	@echo "make deploy  CONTEXT='-c endpointType=... -c ...' [REQUIRE_APPROVAL=never]  deploy into the current AWS account"
	@echo "make diff    CONTEXT='...'  show what a deploy would change"

# Two stages in one .venv: make serve installs only what serving needs (requirements-serve.txt);
# every other target adds tests, lint and the CDK (requirements-dev.txt) on top.
$(VENV)/.serve-installed: requirements-serve.txt constraints.txt pyproject.toml
	@echo "Setting up $(VENV) for make serve (first run only; about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-serve.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

$(VENV)/.installed: $(VENV)/.serve-installed requirements.txt requirements-dev.txt constraints.txt
	@echo "Adding tests, lint and the CDK to $(VENV) (first run only; a few minutes)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

# Re-pin every transitive dependency from a fresh resolve of the requirements files.
constraints:
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin
	.venv-pin/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	{ head -2 constraints.txt; .venv-pin/bin/pip freeze --all --exclude pip; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-pin

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(VENV)/.installed
node: node_modules/.installed

serve: $(VENV)/.serve-installed
	@PORT=$(PORT) PYTHONPATH=lambda_src:. $(PY) -m heartbeat_local

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(VENV)/.installed node_modules/.installed lint
	$(PY) -m pytest

# The long runs: 50,000 generated requests per property, and the full 20,000-heartbeat load.
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -p no:logging tests/integration/test_fuzz.py tests/integration/test_fuzz_authorization.py tests/integration/test_races.py

soak: $(VENV)/.installed
	LOAD_HEARTBEATS=20000 $(PY) -m pytest -p no:logging tests/endtoend/test_load.py

# The fleet simulator's grid (tests/simulation): SIMULATE_SIZES=10,100 by default; 10000 plays the chosen
# rows of scenarios.LARGE (minutes each); SIMULATE_ONLY=<part of a scenario name> narrows it.
simulate: $(VENV)/.installed
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 POWERTOOLS_TRACE_DISABLED=true \
		PYTHONPATH=lambda_src:. $(PY) -m tests.simulation

# Figures, not assertions: see bench/__main__.py. BENCH_QUICK=1 is the seconds-long smoke run.
bench: $(VENV)/.installed
	PYTHONPATH=lambda_src:. $(PY) -m bench

# docs/cost.md from bench/figures.json (written by make bench) and the price table in bench/prices.py.
cost: $(VENV)/.installed
	PYTHONPATH=lambda_src:. $(PY) -m bench.cost

# One target per tier, cheapest first; `make test` runs them all (testpaths in pyproject.toml).
test-fast test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

test-integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

test-endtoend: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest tests/endtoend

test-infra: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest tests/infra

test-docs: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest tests/docs

synth: $(VENV)/.installed node_modules/.installed
	$(CDK) synth $(CDK_FLAGS) --quiet $(if $(strip $(CONTEXT)),$(CONTEXT),$(EXAMPLE_CONTEXT))
	@echo "Template: cdk.out/TaskRunnerHeartbeat.template.json"

# The preflight resolves the region as the CDK CLI does, checks it, and prints it: cdk deploy is given
# that region explicitly, so it deploys where the preflight looked. REQUIRE_APPROVAL=never deploys
# without asking (e.g. in CI); any-change, broadening or destructive ask for those changes.
deploy: $(VENV)/.installed node_modules/.installed
	@test -n "$(strip $(CONTEXT))" || { echo "Give the access context, e.g. make deploy CONTEXT='-c endpointType=private -c vpcEndpointIds=vpce-...' (see docs/deploy.md)"; exit 2; }
	region=$$($(PY) -m infra.preflight $(CONTEXT)) && \
	$(CDK) deploy $(CDK_FLAGS) $(CONTEXT) --region "$$region" $(if $(REQUIRE_APPROVAL),--require-approval $(REQUIRE_APPROVAL)) --outputs-file cdk-outputs.json

diff: $(VENV)/.installed node_modules/.installed
	$(CDK) diff $(CDK_FLAGS) $(if $(strip $(CONTEXT)),$(CONTEXT),$(EXAMPLE_CONTEXT))

clean:
	rm -rf $(VENV) node_modules cdk.out cdk-outputs.json .pytest_cache .mypy_cache .ruff_cache .hypothesis
