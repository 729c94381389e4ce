# Linli — every target sets up what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)

.PHONY: run test lint format bench system-deps browser-deps vendor-assets clean help

help:
	@echo "make run    — set up and start Linli at http://127.0.0.1:8000 (SQLite, demo brand)"
	@echo "make test   — set up, lint (ruff, mypy, import contracts) and run the whole test suite"
	@echo "make bench  — run the benchmarks under bench/ and print their figures"

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv>=0.5"
	$(BIN)/uv pip install --python $(BIN)/python -q -r requirements.lock -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh fonts

browser-deps:
	@bash scripts/system-deps.sh browser

# Pinned browser libraries (hls.js) from the npm registry into linli/web/static/vendor/ (git-ignored).
vendor-assets:
	@bash scripts/vendor-assets.sh

run: $(STAMP) system-deps vendor-assets
	$(BIN)/linli serve

lint: $(STAMP)
	$(BIN)/ruff format --check linli tests bench
	$(BIN)/ruff check linli tests bench
	$(BIN)/mypy linli bench
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format linli tests bench
	$(BIN)/ruff check --fix linli tests bench

test: $(STAMP) system-deps browser-deps vendor-assets lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
