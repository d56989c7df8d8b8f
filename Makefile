# The two commands a new user needs: `make demo` and `make test`. Both set everything up and are re-runnable.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORACLE_DIR := .cache/oracle
ORACLE := $(ORACLE_DIR)/node_modules/@ruvector/tiny-dancer/package.json
export TINYDANCER_ORACLE_DIR := $(CURDIR)/$(ORACLE_DIR)

.PHONY: demo test lint typecheck unit system-deps oracle bench bench-quick report lab monitoring parity evaluate-mmlu soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Prometheus (promtool and a real server for the scrape test) and Node.js (the original router, as an oracle).
system-deps:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing Debian packages: prometheus nodejs npm"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus $$(command -v npm >/dev/null || echo nodejs npm) >/dev/null; \
	  rm -f /usr/sbin/policy-rc.d; \
	fi

# The original Tiny Dancer router from npm, in a scratch folder, for parity tests and benchmarks.
oracle: $(ORACLE)
$(ORACLE):
	mkdir -p $(ORACLE_DIR)
	cd $(ORACLE_DIR) && npm install --silent --no-audit --no-fund @ruvector/tiny-dancer@0.1.22

demo: $(STAMP)
	$(PY) -m tinydancer demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy tinydancer

unit: $(STAMP)
	$(PY) -m pytest -p no:nbval tests

ALL_NOTEBOOKS = $(sort $(wildcard notebooks/*.ipynb))
# The notebooks CI re-runs with nbval, explicitly listed.
NOTEBOOKS := notebooks/01_explore_routing.ipynb notebooks/02_tune_thresholds.ipynb notebooks/03_retrain_calibrate.ipynb notebooks/04_observability_report.ipynb

test: $(STAMP) system-deps oracle lint typecheck
	CI=$${CI:-1} $(PY) -m pytest --doctest-modules tinydancer tests --nbval $(NOTEBOOKS) \
	  --nbval-sanitize-with notebooks/nbval_sanitize.cfg

# Execute every notebook at full size and write HTML reports (with plots) to reports/.
report: $(STAMP) system-deps
	mkdir -p reports
	cd notebooks && ../$(VENV)/bin/jupyter nbconvert --to html --execute --output-dir ../reports \
	  --ExecutePreprocessor.timeout=1800 $(notdir $(ALL_NOTEBOOKS))

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --no-browser --notebook-dir notebooks

# Prometheus config, the guide's alert rules with promtool tests, the Grafana dashboard.
monitoring: $(STAMP)
	$(PY) -m tinydancer assets --out monitoring

parity: $(STAMP) oracle
	$(PY) -m pytest -p no:nbval -s tests/test_parity_original.py

bench: $(STAMP) oracle
	$(PY) -m benchmarks.run

bench-quick: $(STAMP) oracle
	$(PY) -m benchmarks.run --quick

# The EVALUATION.md table: FastGRNN vs TF-IDF + LR vs the original's trainRouter on the MMLU outcomes.
evaluate-mmlu: $(STAMP) oracle
	$(PY) benchmarks/evaluate_mmlu.py --data ../shared/datasets/routellm-mmlu --out benchmarks/results/mmlu_eval.json

soak: $(STAMP)
	$(PY) benchmarks/soak.py --quick

clean:
	rm -rf $(VENV) .cache reports
