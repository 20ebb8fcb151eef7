# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements

.PHONY: help venv run quick test lint bench data clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-6s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(VENV_PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	cp requirements.txt $(STAMP)

venv: $(STAMP)  ## create .venv, install requirements.txt and the project (faces-* commands)

run: $(STAMP)  ## train every model, run every analysis, write the report
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ./run_me.sh

quick: $(STAMP)  ## the same chain on tiny demo data, one epoch each (a few minutes)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" QUICK=1 ./run_me.sh

test: $(STAMP)  ## lint, then the test suite
	$(VENV)/bin/ruff check .
	$(VENV_PY) -m pytest

lint: $(STAMP)  ## ruff
	$(VENV)/bin/ruff check .

bench: $(STAMP)  ## training throughput benchmark (bench/bench_train.py)
	$(VENV_PY) bench/bench_train.py

data: $(STAMP)  ## generate the demo datasets make run uses (starter scale) into demo_datasets/
	$(VENV_PY) -m fmd.demo_data --out demo_datasets --scale starter

clean:  ## remove generated outputs (keeps .venv and datasets)
	rm -rf out checkpoints figures report .pytest_cache
