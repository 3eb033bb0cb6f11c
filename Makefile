# kpledger: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kpl-installed

.PHONY: demo test lint types pytest bench soak install clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-install whenever the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## demo: create the virtual environment, install, start a local network on SQLite
## and run the KP story through it (DEMO_ARGS=--exit to stop at the end)
demo: $(STAMP)
	$(VENV)/bin/kpl demo $(DEMO_ARGS)

## test: install what tests need, then lint, types and the test suite
test: lint types pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

## bench: the benchmarks of bench/, printing ratios against the machine's own limits
## (about 30 minutes on 2 cores; BENCH_RUNS=1 for a quicker pass; ARTISANAL_PURCHASES=20000
## scales the artisanal benchmark's 1,000,000 first sales down); BENCH_SCALE=100k, 1m or
## 10m adds bench.scale: that many records ingested, the rate and history latency at
## each tenth (10m: about 15 GB of disk and several hours)
BENCH_SCALE ?=
bench: $(STAMP)
	$(PY) -m bench.ingest
	$(PY) -m bench.commitments
	$(PY) -m bench.artisanal
	$(PY) -m bench.query
	$(PY) -m bench.network
	$(if $(BENCH_SCALE),$(PY) -m bench.scale --scale $(BENCH_SCALE))
	$(PY) -m bench.results --readme README.md

## soak: the chaos test of tests/node for SOAK_SECONDS (default 600) of chaos
SOAK_SECONDS ?= 600
soak: $(STAMP)
	SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m pytest -q -s tests/node/test_node_chaos.py

## screenshots: run the browser tests (Chromium) and write the screenshots docs/ shows
## to docs/screenshots/ from them
screenshots: $(STAMP)
	KPL_REQUIRE_BROWSER=1 KPL_DOCS_SCREENSHOTS=1 $(PY) -m pytest -q tests/web/test_web_explorer.py tests/web/test_web_officer.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out
