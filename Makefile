# Two commands on a fresh machine: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv when it is missing and install the project under constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,fast,ray,parquet,s3]'
	# the seed's book (tests compare lmfeed.GPT with its GPTModel): --no-deps, its own would pull a CUDA torch
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt llms-from-scratch==1.0.19
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lmfeed demo

# ruff (lint, import order) and mypy (the public hints that py.typed promises) first, then the suite.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

# lmfeed against its peers (benchmarks/run.py, then each issue's own bench_*.py; about 28 min idle, QUICK=1 under 3). The seed's package would
# pull a CUDA torch and TensorFlow with its dependencies: it is installed without them (it needs only torch and
# tiktoken). litdata, datatrove and Mosaic streaming go into their own folders under benchmarks/.peers/ (pip --target,
# --no-deps, pinned in benchmarks/peers.py), never into .venv: torch stays the CPU 2.13.0 and numpy the project's.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,fast,ray,parquet,s3,bench]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt llms-from-scratch==1.0.19
	touch $(BENCH_STAMP)

# peers.py --install checks each peer's own stamp (a folder removed by hand is installed again)
bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/peers.py --install
	$(BIN)/python benchmarks/run.py $(if $(QUICK),--quick)
	$(BIN)/python benchmarks/bench_corpora.py $(if $(QUICK),--quick)
	$(BIN)/python benchmarks/bench_train.py $(if $(QUICK),--quick)
	$(BIN)/python benchmarks/bench_attention.py $(if $(QUICK),--rounds 1 --steps 1 --max-length 256)
	$(BIN)/python benchmarks/bench_documents.py $(if $(QUICK),--quick)
	$(BIN)/python benchmarks/bench_ray.py $(if $(QUICK),--corpus-mb 20 --rounds 1)

clean:
	rm -rf $(VENV) lmfeed-demo
