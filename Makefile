# Two commands do everything on a fresh clone:
#   make data   set up .venv (once), then regenerate every artifact in data/ by running the notebooks
#   make test   set up .venv (once), then run the whole test suite, notebooks included
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The PyTorch builds this project is tested with (pip takes them from the machine's disk here).
TORCH ?= torch==2.14.1 torchvision==0.29.1
# Papermill overrides for `make data`, e.g. PARAMS="-p epochs 5"
PARAMS ?=
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))

.PHONY: setup data regenerate test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

data: setup
	mkdir -p notebooks/executed
	set -e; for notebook in $(NOTEBOOKS); do \
		$(PY) -m papermill --log-level WARNING $$notebook notebooks/executed/$$(basename $$notebook) $(PARAMS); \
	done
	$(PY) -m cnnlib verify

regenerate: setup
	$(PY) -m cnnlib regenerate

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) bench/run.py
