# The two commands of the README: `make up` (the whole hub, its simulation and the dashboard on the
# embedded broker) and `make test`. Both create the virtual environment and fetch Kafka's jars on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install up demo test lint broker-provision clean

$(BIN)/.installed: pyproject.toml connectors/dashboard/assets/package-lock.json
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	npm ci --prefix connectors/dashboard/assets --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python -m connectors.dashboard.vendor
	@touch $@

install: $(BIN)/.installed

broker-provision: install
	$(BIN)/lintas broker provision

up: broker-provision
	$(BIN)/lintas up

demo: broker-provision
	$(BIN)/lintas demo

test: broker-provision
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lintas schemas check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
