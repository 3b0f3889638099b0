# ser — speech emotion recognition, served. `make serve` and `make test` work from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000
MODEL ?= ser_lstm:latest
SER_DATA ?=
TESS ?= ../shared/data/tess
ENSEMBLE ?= 1
STAMP := $(VENV)/.installed

.PHONY: help setup serve train train-tess evaluate-speaker speaker-gap ablation report test test-fast image coldstart test-container screenshot lint format clean

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

train-tess: setup  ## Train the default preset on the real TESS (random split, 400 test clips; ENSEMBLE=5: five seeds as one model).
	$(BIN)/python -m training.train --data $(TESS) --ensemble $(ENSEMBLE)

evaluate-speaker: setup  ## Speaker-independent TESS protocol (OAF→YAF and YAF→OAF).
	$(BIN)/python -m training.evaluate --protocol speaker --data $(TESS) --json reports/speaker.json

speaker-gap: setup  ## Does each emotion sound alike in both TESS speakers? Centroids compared, no model (~30 s).
	$(BIN)/python -m training.speaker_gap --data $(TESS) --json reports/speaker_gap.json

ablation: setup  ## What each change buys speaker-independently on TESS (~11 h, 41 variants): reports/ablation/.
	$(BIN)/python -m training.ablation --data $(TESS)

report: setup  ## Data report of SER_DATA (default: TESS).
	$(BIN)/python -m training.report --data $(or $(SER_DATA),$(TESS))

test: setup  ## Every test (real-TESS, browser and container tests skip with a reason when absent).
	$(BIN)/python -m pytest -q

test-fast: setup  ## The quick inner loop: no training runs, no servers.
	$(BIN)/python -m pytest -q -m "not slow"

RUNTIME ?= litert
BENTOFILE := $(if $(filter keras,$(RUNTIME)),bentofile.keras.yaml,bentofile.yaml)
IMAGE_TAG ?= $(if $(filter keras,$(RUNTIME)),ser:keras,ser:latest)

# containerize runs from /: bentoml 1.4.39 refuses a bento's dockerfile_template (bentofile.yaml
# has one, for the slim image) unless its temporary copy lies under the working directory.
image: setup  ## Serving image: slim LiteRT (default) or RUNTIME=keras (full TensorFlow); docker, else podman.
	$(BIN)/bentoml build -f $(BENTOFILE) --output tag | tail -n1 | sed 's/__tag__://' > .bento-tag
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  cd / && $(abspath $(BIN))/bentoml containerize $$(cat $(CURDIR)/.bento-tag) -t localhost/$(IMAGE_TAG); \
	else \
	  ../shared/tools/local-base-image >/dev/null && \
	  cd / && CONTAINERS_CONF=/var/tmp/local-base-image/containers.conf \
	  $(abspath $(BIN))/bentoml containerize $$(cat $(CURDIR)/.bento-tag) --backend podman -t localhost/$(IMAGE_TAG); \
	fi

coldstart: setup  ## Image size and start → first answered /predict of the image `make image` built (3 runs).
	$(BIN)/python -m loadtests.coldstart --image localhost/$(IMAGE_TAG)

test-container: setup  ## Build the image from a test model and check it against `bentoml serve`.
	$(BIN)/python -m pytest -q -s tests/test_container.py

SCREENSHOT_STORE ?= $(HOME)/.cache/ser/screenshot-bentoml
screenshot: setup  ## Retake docs/demo.png: headless Chromium on /ui, serving the embedded default (trained on first use).
	BENTOML_HOME=$(SCREENSHOT_STORE) $(BIN)/python -m training.ensure_model
	SER_UPDATE_SCREENSHOT=1 SER_DEMO_STORE=$(SCREENSHOT_STORE) $(BIN)/python -m pytest -q tests/test_demo.py -k browser_upload

lint: setup  ## ruff check + format check.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## Remove the venv and caches (the model store is left alone).
	rm -rf $(VENV) .pytest_cache .ruff_cache

# --- load tests and the benchmark ---------------------------------------------------------------
URL ?= http://127.0.0.1:$(PORT)
USERS ?= 16
DURATION ?= 30s
SHAPE ?= ramp
LOADTEST_DIR ?= reports/loadtest
BENCH_MODEL ?=
.PHONY: loadtest bench

loadtest: setup  ## Locust against URL (USERS, DURATION, SHAPE=ramp|step|none); CSV + HTML into reports/loadtest/.
	@mkdir -p $(LOADTEST_DIR)
	SER_LOAD_SHAPE=$(SHAPE) $(BIN)/locust -f loadtests/locustfile.py --headless --only-summary -H $(URL) \
	  -u $(USERS) -r $(USERS) -t $(DURATION) --csv $(LOADTEST_DIR)/ser --html $(LOADTEST_DIR)/report.html

bench: setup  ## Benchmark (6–8 min): ours vs in-process limit, unbatched, a seed-style peer; bench/report.md.
	@$(BIN)/python -c "import flask, gunicorn" 2>/dev/null || $(BIN)/python -m pip install -q "flask>=3.1" "gunicorn>=23"
	$(BIN)/python -m loadtests.bench $(if $(BENCH_MODEL),--model $(BENCH_MODEL))

DEMO_PORT ?= 7860
.PHONY: demo
demo: setup  ## The Gradio demo standalone on DEMO_PORT (7860) against the service at URL (it also serves /ui).
	$(BIN)/python -m gradio_demo --url $(or $(URL),http://127.0.0.1:3000) --port $(DEMO_PORT)

# --- reliability: soak, faults, hostile inputs -------------------------------------------------
SOAK_MIN ?= 10
.PHONY: soak test-reliability
soak: setup  ## Soak (SOAK_MIN=10 min): serve, find max throughput, hold 70 % of it; 0 errors, RSS growth < 5 %; bench/soak.md.
	$(BIN)/python -m training.ensure_model --name $(MODEL) $(if $(SER_DATA),--data $(SER_DATA))
	SER_MODEL=$(MODEL) $(BIN)/python -m loadtests.soak run --minutes $(SOAK_MIN) --out bench/soak.md

test-reliability: setup  ## Hostile inputs, fuzzing, schemathesis, security, kill -9 under load (~5 min).
	$(BIN)/python -m pytest -q tests/test_hostile_decode.py tests/test_fuzz_decode.py tests/test_hostile_service.py \
	  tests/test_schemathesis.py tests/test_security.py tests/test_faults.py
