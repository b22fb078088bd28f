# Two commands for a new user: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest db-tests bench clean-data help record-histories

help:
	@echo "make run    set up .venv and start the whole stack (Postgres, Temporal + UI, worker, API, simulator)"
	@echo "make test   set up .venv with dev extras, then ruff, mypy and the whole pytest suite"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/orchestrator dev

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

pytest: $(STAMP)
	$(BIN)/pytest -q

# The database tests alone, e.g. against another server: DATABASE_URL=postgresql://... make db-tests
db-tests: $(STAMP)
	$(BIN)/pytest -q -m db

# Scripts that measure something (bench/skeleton.py is a module they import, not a benchmark).
BENCHES := bench/orders.py bench/inventory.py bench/sourcing.py bench/options.py

bench: $(STAMP)
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean-data:
	rm -rf .data

# Add the histories of new workflow tests to the replay contract (tests/replay/histories/); stored ones are
# kept, because they prove the current code replays what older code recorded.
record-histories: $(STAMP)
	ORCH_RECORD_HISTORIES=1 $(BIN)/pytest -q tests/workflows
