# Two commands do everything on a fresh clone:
#   make data   set up .venv (once), then regenerate every artifact in data/ by running the notebooks
#   make test   set up .venv (once), then run the whole test suite, notebooks included
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The PyTorch builds this project is tested with (pip takes them from the machine's disk here).
TORCH ?= torch==2.14.1 torchvision==0.29.1
# Papermill overrides for `make data`, e.g. PARAMS="-p epochs 5"; OUTPUT_DIR moves the artifacts.
PARAMS ?=
OUTPUT_DIR ?= data
unexport OUTPUT_DIR  # make would expand it on the way to the environment
# Where `make data` puts the executed notebooks (a read-only clone: EXECUTED_DIR=/tmp/executed).
EXECUTED_DIR ?= notebooks/executed
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))
# `make demo` serves the page on this port of 127.0.0.1 only, e.g. `make demo PORT=8001`;
# HOST=0.0.0.0 serves a class on the local network (it prints the URL to give the students).
PORT ?= 8000
HOST ?= 127.0.0.1
# The folder whose pretrained_cnn_data.json `make demo` and `make site` show (make data's
# OUTPUT_DIR), e.g. `make demo DATA=runs/seed1`; SITE is the folder `make site` writes. Set on
# the command line only (`=`, not `?=`): a DATA or SITE exported in the shell is not taken.
DATA = data
SITE = site
# JupyterLab reads settings overrides from <environment>/share/jupyter/lab/settings/overrides.json:
# widget state saved with a notebook, no autosave, no news or update pop-ups (see the README).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: setup data notebooks regenerate test lint bench claims demo site

setup: $(STAMP) $(LAB_OVERRIDES)

$(STAMP): pyproject.toml
	@mkdir -p "$(VENV)" 2>/dev/null && [ -w "$(VENV)" ] || { echo "make: cannot create the \
	environment $(VENV) here (not writable for $$(id -un)); name a writable folder: \
	make $(or $(MAKECMDGOALS),setup) VENV=/tmp/cnn-venv" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(LAB_OVERRIDES): notebooks/jupyterlab-overrides.json $(STAMP)
	mkdir -p $(@D)
	cp $< $@

# The notebooks in lecture order, executed copies in notebooks/executed/ (git-ignored), artifacts in
# $(OUTPUT_DIR). The last notebook ends with `cnnlib.verify`: a failed check fails `make data`.
# OUTPUT_DIR reaches run.py through the environment, unexpanded and unparsed by make or the shell:
# any path works (spaces, quotes, backticks, $), made absolute for the notebooks in notebooks/.
# `exec`: run.py takes the shell's place, so a hangup (the terminal closed) or a SIGTERM to make
# reaches run.py, which stops its kernels, and no shell dies under make at the same instant.
data: export CNNLIB_OUTPUT_DIR := $(value OUTPUT_DIR)
data: setup
	$(if $(findstring output_dir,$(PARAMS)),$(error set OUTPUT_DIR=... rather than -p output_dir))
	$(if $(strip $(value OUTPUT_DIR)),,$(error OUTPUT_DIR is empty; name a folder, e.g. OUTPUT_DIR=data))
	@case "$$CNNLIB_OUTPUT_DIR" in /*) out=$$CNNLIB_OUTPUT_DIR;; *) out=$$PWD/$$CNNLIB_OUTPUT_DIR;; esac; \
	exec $(PY) notebooks/run.py --executed-dir "$(EXECUTED_DIR)" -p output_dir "$$out" $(PARAMS)

# Re-execute the committed notebooks with default parameters, strip timings, check them.
notebooks: setup
	$(PY) notebooks/refresh.py
	$(PY) -m pytest -q tests/test_notebooks.py -k committed

regenerate: setup
	$(PY) -m cnnlib regenerate

# As root, the tools the tests drive (Chromium, rsync, zip) are installed first, as CI does;
# elsewhere the run ends with a line naming the browser tests skipped and the command that fixes it.
test: setup
	@if [ "$$(id -u)" = 0 ]; then bash .ci/install-tools; fi
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(PY) bench/run.py

# Every checked sentence of the notebooks against seeds 0-9 (each run in a scratch folder, never
# data/): a table sentence x seed, and exit status 1 if a general sentence fails for one of them.
claims: setup
	$(PY) bench/claims.py

# The demo page: demo/serve.py serves demo/, js/ and $(DATA)/pretrained_cnn_data.json, nothing
# else. Ctrl-C stops it.
demo:
	@$(PYTHON) demo/serve.py --host $(HOST) --port $(PORT) --data "$(DATA)"

# The demo as one static folder, $(SITE), for any web server and any path on it (demo/site.py).
site:
	@$(PYTHON) demo/site.py --data "$(DATA)" --out "$(SITE)"
