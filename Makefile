# Two commands on a fresh machine (README "Quick start"):
#
#   make demo   sets up .venv (first time only), generates the synthetic DNA data (first time
#               only), trains on it and prints β with its evidence; then says how to open the app
#   make test   sets up .venv with the test extras (first time only) and runs the test suite
#
# Variables (e.g. `make demo TORCH=cuda`):
#   PYTHON       interpreter that creates .venv (>= 3.10)            default: python3
#   TORCH        cpu = the CPU build of PyTorch, cuda = PyPI's default (CUDA) build   default: cpu
#   TORCH_INDEX  wheel index used for TORCH=cpu          default: https://download.pytorch.org/whl/cpu
#   VENV         where the environment lives                          default: .venv
#   DEMO_N       samples in the demo dataset                          default: 8000
#   PYTEST_ARGS  extra pytest arguments for `make test`, e.g. PYTEST_ARGS="tests/test_model.py -x"
#
# Why make: `make demo` / `make test` is a convention people already know, make ships with
# every Linux and macOS developer setup, and its file targets give idempotence for free:
# each install step writes a stamp file in .venv, keyed on the hash of pyproject.toml (and
# on the torch build), so a second run installs nothing and a changed pyproject.toml
# re-installs. The recipes only install and call the mweight CLI; all logic stays in mweight/.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= cpu
TORCH_VERSION := 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
DEMO_N ?= 8000
DEMO_DATA := data/dna_additive.npz
DEMO_RUN := runs/dna-additive
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

ifeq ($(filter $(TORCH),cpu cuda),)
$(error TORCH=$(TORCH): expected cpu or cuda)
endif

# First 12 hex digits of sha256(pyproject.toml): the stamps below carry it in their names.
KEY := $(shell $(PYTHON) -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest()[:12])" 2>/dev/null)
ifeq ($(KEY),)
$(error $(PYTHON) not found or pyproject.toml unreadable; run make from the repository root, or set PYTHON=python3.11)
endif

TORCH_STAMP := $(VENV)/.stamp-torch-$(TORCH_VERSION)-$(TORCH)
APP_STAMP := $(VENV)/.stamp-app-$(KEY)
DEV_STAMP := $(VENV)/.stamp-dev-$(KEY)

.PHONY: demo test

demo: $(APP_STAMP) $(DEMO_DATA)
	$(BIN)/mweight train --data $(DEMO_DATA) --preset dna-additive --out $(DEMO_RUN) --overwrite
	@echo
	@echo "Open the result in the app (the runs folder ./runs, http://localhost:8501):"
	@echo "    $(BIN)/mweight app"
	@echo "or activate the environment first: . $(BIN)/activate && mweight app"

test: $(DEV_STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Same arguments and seed = the same file, so it is generated once.
$(DEMO_DATA): | $(APP_STAMP)
	$(BIN)/mweight synth dna --design additive --n $(DEMO_N) --seed 0 --out $@

$(BIN)/python:
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 10))" || \
	  { echo "make: mweight needs Python >= 3.10; $(PYTHON) is older (set PYTHON=python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

# torch first, so that mweight's `torch>=2.1` is already satisfied by the build chosen here.
# TORCH=cpu: the CPU wheel index if it answers within 10 s; otherwise pip's own configured
# indexes (say so), so that an unreachable index neither stops nor stalls the install
# (pip retries every package page on an unreachable index, about a minute and a half here).
$(TORCH_STAMP): | $(BIN)/python
	@if ls $(VENV)/.stamp-torch-* >/dev/null 2>&1; then \
	  echo "make: switching the torch build to $(TORCH) $(TORCH_VERSION)"; \
	  rm -f $(VENV)/.stamp-torch-* $(VENV)/.stamp-app-* $(VENV)/.stamp-dev-*; \
	  $(PIP) uninstall -y -q torch; fi
	@set -e; index=""; \
	if [ "$(TORCH)" = cpu ]; then \
	  if $(BIN)/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=10)" "$(TORCH_INDEX)" 2>/dev/null; \
	  then index="--index-url $(TORCH_INDEX)"; \
	  else echo "make: $(TORCH_INDEX) is not reachable; installing torch==$(TORCH_VERSION) from pip's configured indexes"; fi; \
	fi; \
	echo "$(PIP) install torch==$(TORCH_VERSION) $$index"; \
	$(PIP) install "torch==$(TORCH_VERSION)" $$index
	touch $@

$(APP_STAMP): $(TORCH_STAMP)
	rm -f $(VENV)/.stamp-app-*
	$(PIP) install -q -e ".[app]"
	touch $@

# The dev extra includes everything the app extra installs, so it satisfies `make demo` too.
$(DEV_STAMP): $(TORCH_STAMP)
	rm -f $(VENV)/.stamp-dev-* $(VENV)/.stamp-app-*
	$(PIP) install -q -e ".[app,dev]"
	touch $@ $(APP_STAMP)
