# quant_assets: every target bootstraps .venv from requirements.lock itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: demo test test-ui dev bench lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install: the package with every dependency pinned by requirements.lock.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $@

# Development install: the same plus the dev extras (ruff, mypy, pytest, backtesting.py, ...).
$(VENV)/.installed-dev: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/quant-assets demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# The Dagster UI in headless Chromium (needs `sudo apt-get install -y chromium`, see README).
test-ui: $(VENV)/.installed-dev
	$(BIN)/pytest -m ui

dev: $(VENV)/.installed
	$(BIN)/quant-assets instruments sync
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/backtest_speed.py && $(BIN)/python benchmarks/walkforward_speed.py

# Re-pin requirements.lock from the current .venv (after changing pyproject.toml).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock
