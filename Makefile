# The two commands of the README: `make run` (the hub with the demo set) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Start the hub on 127.0.0.1:8000: SQLite store, in-process worker, demo rules.
## The first run copies switchboard.example.yaml to switchboard.yaml (yours to edit; every
## `switchboard` command run from here reads it).
run: $(STAMP) switchboard.yaml
	SWITCHBOARD_SECRET_GITHUB=$${SWITCHBOARD_SECRET_GITHUB:-demo-secret} \
	SWITCHBOARD_ADMIN_TOKEN=$${SWITCHBOARD_ADMIN_TOKEN:-demo-admin-token} \
		$(BIN)/switchboard serve

switchboard.yaml:
	cp switchboard.example.yaml switchboard.yaml
	@echo "created switchboard.yaml from switchboard.example.yaml"

## Lint, type-check and run the whole test suite (unit, integration, processes).
test: $(STAMP) lint
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check hub connectors tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
