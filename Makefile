# cgrpy: the two commands are `make run` and `make test`; everything else is a helper.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install protos check-protos lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole suite on the embedded SQLite StorDB with the tutorial tariff plan.
run: install
	$(BIN)/cgr up --tariffplan tariffplans/tutorial

## Run the whole test suite (real gRPC servers on loopback, real Postgres).
test: install check-protos
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Regenerate the Python code for protos/ (committed; CI fails on drift).
protos: install
	$(BIN)/python scripts/gen_protos.py

check-protos: install
	$(BIN)/python scripts/gen_protos.py --check

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache
