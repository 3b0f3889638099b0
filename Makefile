# ser — speech emotion recognition, served. `make serve` and `make test` work from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
MODEL ?= ser_lstm:latest
SER_DATA ?=
TESS ?= ../shared/data/tess
STAMP := $(VENV)/.installed

.PHONY: help setup serve train train-tess evaluate-speaker report test test-fast image test-container lint format clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

setup: $(STAMP)  ## Create .venv with the pinned packages (idempotent).

serve: setup  ## Train the embedded default model if the store has none, then serve on $(PORT).
	$(BIN)/python -m training.ensure_model --name $(MODEL) $(if $(SER_DATA),--data $(SER_DATA))
	SER_MODEL=$(MODEL) $(BIN)/bentoml serve service:SER --port $(PORT)

train: setup  ## Train on SER_DATA (default: the embedded synthetic corpus) into the model store.
	$(BIN)/python -m training.ensure_model --name $(MODEL) --force $(if $(SER_DATA),--data $(SER_DATA))

train-tess: setup  ## Train the default preset on the real TESS (random split, 400 test clips).
	$(BIN)/python -m training.train --data $(TESS)

evaluate-speaker: setup  ## Speaker-independent TESS protocol (OAF→YAF and YAF→OAF).
	$(BIN)/python -m training.evaluate --protocol speaker --data $(TESS) --json reports/speaker.json

report: setup  ## Data report of SER_DATA (default: TESS).
	$(BIN)/python -m training.report --data $(or $(SER_DATA),$(TESS))

test: setup  ## Every test (real-TESS, browser and container tests skip with a reason when absent).
	$(BIN)/python -m pytest -q

test-fast: setup  ## The quick inner loop: no training runs, no servers.
	$(BIN)/python -m pytest -q -m "not slow"

image: setup  ## bentoml build + containerize (docker if present, else podman via local-base-image).
	$(BIN)/bentoml build --output tag | tail -n1 | sed 's/__tag__://' > .bento-tag
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  $(BIN)/bentoml containerize $$(cat .bento-tag) -t ser:latest; \
	else \
	  ../shared/tools/local-base-image >/dev/null && \
	  CONTAINERS_CONF=/var/tmp/local-base-image/containers.conf \
	  $(BIN)/bentoml containerize $$(cat .bento-tag) --backend podman -t localhost/ser:latest; \
	fi

test-container: setup  ## Build the image from a test model and check it against `bentoml serve`.
	$(BIN)/python -m pytest -q -s tests/test_container.py

lint: setup  ## ruff check + format check.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## Remove the venv and caches (the model store is left alone).
	rm -rf $(VENV) .pytest_cache .ruff_cache
