# The exchange's two set-up commands are `make run` and `make test`; `make help` lists the rest.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHOTS  ?= screenshots

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck pytest bench screenshots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install the exchange with its dev tools

run: $(STAMP) ## run the exchange with demo data on http://127.0.0.1:8000 (Ctrl-C stops it)
	$(BIN)/market run

test: lint typecheck pytest ## everything CI runs: ruff, mypy, pytest

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy, strict on market/, auctions/, workers/
	$(BIN)/mypy

pytest: $(STAMP) ## the test suite against real PostgreSQL and Redis
	$(BIN)/pytest

bench: $(STAMP) ## the benchmarks under bench/, printing their figures
	@for b in bench/*.py; do [ $$b = bench/common.py ] && continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

screenshots: $(STAMP) ## PNGs of the demo's home, lot (phone) and buyer's pages into $(SHOTS) (default screenshots/)
	$(BIN)/python -m market.screenshots $(SHOTS)

clean: ## stop embedded services and remove .venv (data in .market/ is kept)
	-$(BIN)/market services down
	rm -rf $(VENV)
