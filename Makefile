# dg_literate: the two commands of the README are `make reproduce` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# pip extras: dev (nbdev, pytest) and ray, so `make test` runs the Ray launcher's test as CI does
# (`make test EXTRAS=dev` skips that one test and installs about 200 MB less)
EXTRAS ?= dev,ray
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
export PATH := $(BIN):$(PATH)
export MPLBACKEND ?= Agg
export PYTHONUNBUFFERED := 1
# hash of the files nbdev_export / dg-export-tests / nbdev_clean write; any change means drift
TREE_HASH = find dg_literate tests nbs -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' | sort | xargs md5sum | md5sum

.PHONY: install export clean-nbs test dry-run reproduce bench

$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)

# notebooks -> library (nbdev_export) and notebooks -> tests/ (dg-export-tests)
export: install
	$(BIN)/nbdev_export
	$(BIN)/dg-export-tests

clean-nbs: install
	$(BIN)/nbdev_clean

test: install
	@before=$$($(TREE_HASH)); $(BIN)/nbdev_export && $(BIN)/dg-export-tests >/dev/null; \
	  [ "$$before" = "$$($(TREE_HASH))" ] || { echo "FAIL: nbdev_export/dg-export-tests changed the library or tests/: the notebooks and the exported code were out of step; commit the exported files"; git status --short dg_literate tests; exit 1; }
	@before=$$($(TREE_HASH)); $(BIN)/nbdev_clean; \
	  [ "$$before" = "$$($(TREE_HASH))" ] || { echo "FAIL: nbdev_clean changed notebooks: commit clean notebooks"; git status --short nbs; exit 1; }
	@echo "export and clean leave the tree unchanged"
	HF_HUB_OFFLINE=1 $(BIN)/nbdev_test --n_workers 1 --timing
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests
	HF_HUB_OFFLINE=1 $(BIN)/dg-reproduce --runs runs/dry dry-run

# the paper settings only: every parameter file under nbs/params/ at real shapes and tiny sizes
dry-run: install
	HF_HUB_OFFLINE=1 $(BIN)/dg-reproduce --runs runs/dry dry-run

# the main job: every registered paper notebook with its default (toy-world) parameters
reproduce: install
	$(BIN)/dg-reproduce all

bench: install
	$(BIN)/dg-reproduce bench
