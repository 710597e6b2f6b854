# The words people type. Every target creates what it needs from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SAMENV := .venv-sam
SAM    := $(SAMENV)/bin/sam
CHECKOVENV := .venv-checkov
CHECKOV    := $(CHECKOVENV)/bin/checkov
EXECUTION ?= events/execution.json
# `make invoke FN=StarterFunction EVENT=events/starter.json` invokes one function with one event.
FN    ?=
EVENT ?=
# `sam build` needs a python3.13 (the Lambda runtime) on PATH; pyenv's counts too.
PY313_DIR ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	$$p --version >/dev/null 2>&1 && { dirname "$$(command -v $$p)"; break; }; done)

.PHONY: run test lint typecheck unit integration static build validate deploy invoke schema diagram prices clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What a rehearsal needs: the pinned runtime libraries and the emulator (the [rehearse] extra).
$(VENV)/.run: requirements/run.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/run.txt
	$(BIN)/pip install --quiet -e '.[rehearse]'
	touch $@

# Everything the tests need on top.
$(VENV)/.dev: requirements/dev.txt $(VENV)/.run
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

# The SAM CLI pins its own boto3 and cfn-lint, so it lives in its own environment.
$(SAM): requirements/sam.txt
	$(PYTHON) -m venv $(SAMENV)
	$(SAMENV)/bin/pip install --quiet -r requirements/sam.txt
	touch $@

# checkov pins its own boto3 too: its own environment as well.
$(CHECKOV): requirements/checkov.txt
	$(PYTHON) -m venv $(CHECKOVENV)
	$(CHECKOVENV)/bin/pip install --quiet -r requirements/checkov.txt
	touch $@

run: $(VENV)/.run
	$(BIN)/amirun run $(EXECUTION)

# The report page's test opens it in a real headless browser: Debian's chromium.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		command -v apt-get >/dev/null 2>&1 || { echo "install chromium (the report page test needs it)"; exit 1; }; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.dev $(SAM) $(CHECKOV) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	SAM_CLI=$(abspath $(SAM)) CHECKOV=$(abspath $(CHECKOV)) $(BIN)/pytest -n auto --dist loadfile

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

build: $(SAM)
	PATH="$(PY313_DIR):$$PATH" $(SAM) build

# Every function in a container (`sam local invoke`) with its sample events, against the
# local emulator. The first run builds the Lambda-like base image (tools/lambda-image.sh).
invoke: $(VENV)/.run $(SAM)
	SAM_CLI=$(abspath $(SAM)) $(BIN)/python -m amirun.local.invoke \
		$(if $(FN),--function $(FN)) $(if $(EVENT),--event $(EVENT))

validate: $(SAM)
	$(SAM) validate --lint

deploy: build
	$(SAM) deploy --guided

schema: $(VENV)/.run
	$(BIN)/python -m amirun.schema > schema/execution.schema.json

# EC2 prices for the cost estimates, from the Price List API (needs AWS credentials).
prices: $(VENV)/.run
	$(BIN)/python -m amirun.prices

# The workflow diagram in docs/operations.md, redrawn from the ASL (run it after changing the workflow).
diagram: $(VENV)/.run
	$(BIN)/python -m amirun.diagram

clean:
	rm -rf $(VENV) $(SAMENV) $(CHECKOVENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
