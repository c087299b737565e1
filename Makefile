# The two commands of the README's quick start. Each creates the environment first if needed
# (a venv in .venv with the CPU torch wheel and the project installed editable), so a fresh
# clone needs nothing else:
#
#   make run     materialize the whole graph headless on a real Dagster instance
#   make test    run the test suite
#
# `make run` reads real prices from ../shared/data/prices when that folder exists and otherwise
# runs on the deterministic synthetic market, saying which. Override: `make run SOURCE=yfinance`
# (needs internet), `make run SOURCE=csv CSV_DIR=/path/to/prices`, `make run ARGS="--tickers AAPL"`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_PRICES := ../shared/data/prices
SOURCE ?= $(if $(wildcard $(SHARED_PRICES)/GSPC.csv),csv,synthetic)
CSV_DIR ?=
ARGS ?=

.PHONY: run test dev serve env

run: $(VENV)/.installed
ifeq ($(origin SOURCE)$(SOURCE),filesynthetic)
	@echo "make run: no price folder at $(SHARED_PRICES), so the synthetic market" \
	      "(SOURCE=csv CSV_DIR=/your/prices for CSVs, SOURCE=yfinance for Yahoo)"
endif
	$(PY) -m stock_assets materialize --source $(SOURCE) $(if $(CSV_DIR),--csv-dir $(CSV_DIR)) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2

dev: $(VENV)/.installed
	$(PY) -m stock_assets dev

serve: $(VENV)/.installed
	STOCK_ASSETS_HOME=$${STOCK_ASSETS_HOME:-$$PWD/.stock_assets} $(VENV)/bin/uvicorn serving.main:app --host 127.0.0.1 --port 8000

env: $(VENV)/.installed

# The CPU wheel first: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@
