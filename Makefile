# Every install goes through constraints.txt (torch==2.13.0, the CPU build on this machine).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all lint bench bench-env clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## demo: simulate a cohort, prepare, pretrain, fine-tune (tiny), score a held-out night
demo: setup
	rm -rf demo
	$(VENV)/bin/synthsleepnet demo --out demo

## test: lint and type checks, then the suite CI runs (slow-marked checks excluded)
test: lint
	$(PY) -m pytest -q -m "not slow" tests src

test-all: setup
	$(PY) -m pytest -q tests src

## lint: ruff, mypy (disallow_untyped_defs on src/ and benchmarks/) and the count of type: ignore comments
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	@echo "type: ignore comments in src/ and benchmarks/: $$(grep -rn --include='*.py' 'type: ignore' src benchmarks | wc -l)"

bench: setup
	$(PY) benchmarks/store_random_access.py
	$(PY) benchmarks/encoder_speed.py

## bench-env: a separate environment with the peers YASA and psgscoring and the runtimes measured
## against ours (ONNX Runtime) — never package dependencies
bench-env:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -c constraints.txt -e . -r benchmarks/requirements-peers.txt -r benchmarks/requirements-runtimes.txt

clean:
	rm -rf $(VENV) .venv-bench demo .pytest_cache
