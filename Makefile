# Two commands do everything: `make test`, `make bench`. NOVENV=1 uses the current interpreter and
# installs nothing (GPU machines that reach no package registry).
SHELL := /bin/bash
PY ?= python3
VENV := .venv

ifeq ($(NOVENV),1)
PYTHON := $(PY)
SETUP :=
else
PYTHON := $(VENV)/bin/python
SETUP := $(VENV)/.installed
endif

# The CUDA extra follows the driver: none without nvidia-smi, cuda13 for a CUDA 13 driver, else cuda12.
CUDA_EXTRA := $(shell v=$$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1); \
	if [ -z "$$v" ]; then echo ""; elif [ "$$v" -ge 13 ]; then echo ",cuda13"; else echo ",cuda12"; fi)

PYTEST_ARGS ?=
BENCH_ARGS ?=
RUN_JSON ?= results/run.json

.PHONY: setup test test-gpu bench report profile lint format clean help

help:
	@echo "make test      unit + integration tests (GPU tests skip without a GPU)"
	@echo "make bench     benchmark suite -> $(RUN_JSON) and results/report/"
	@echo "make report    tables and plots from $(RUN_JSON)"
	@echo "make profile   Nsight Systems / Nsight Compute traces of one run per backend"
	@echo "make lint      ruff"
	@echo "NOVENV=1       use the current python3, install nothing"

setup: $(SETUP)

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev$(CUDA_EXTRA)]"
	@echo "installed mbv2 with extras: dev$(CUDA_EXTRA)"
	touch $@

test: $(SETUP)
	$(PYTHON) -m pytest tests/ -q $(PYTEST_ARGS)

test-gpu: $(SETUP)
	$(PYTHON) -m pytest tests/ -q -m gpu $(PYTEST_ARGS)

bench: $(SETUP)
	@mkdir -p $(dir $(RUN_JSON))
	MBV2_GIT_COMMIT=$${MBV2_GIT_COMMIT:-$$(git rev-parse HEAD 2>/dev/null)} \
	MBV2_GIT_DIRTY=$${MBV2_GIT_DIRTY:-$$(git status --porcelain 2>/dev/null | grep -q . && echo 1 || echo 0)} \
	$(PYTHON) -m pytest bench/ -q --benchmark-json=$(RUN_JSON) --benchmark-columns=median,iqr,rounds \
		--benchmark-sort=fullname $(BENCH_ARGS)
	$(PYTHON) -m mbv2 report $(RUN_JSON) --out results/report

report: $(SETUP)
	$(PYTHON) -m mbv2 report $(RUN_JSON) --out results/report

profile: $(SETUP)
	$(PYTHON) -m mbv2 profile --out results/profile

lint: $(SETUP)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: $(SETUP)
	$(PYTHON) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks build *.egg-info results/report
