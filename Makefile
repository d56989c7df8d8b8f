# The two commands a new user needs: `make demo` and `make test`. Both set everything up and are re-runnable.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORACLE_DIR := .cache/oracle
ORACLE := $(ORACLE_DIR)/node_modules/@ruvector/tiny-dancer/package.json
export TINYDANCER_ORACLE_DIR := $(CURDIR)/$(ORACLE_DIR)

# Benchmarks write here unless asked (git-ignored): `make bench BENCH_OUT=benchmarks/results` refreshes the docs' results.
BENCH_OUT ?= .cache/bench/results
# Notebook size for `make report`: full (the default here) or small (the size whose outputs are stored).
NOTEBOOK_SIZE ?= full

.PHONY: demo test lint typecheck unit system-deps c-extension oracle bench bench-quick report lab monitoring parity evaluate-mmlu evaluate-scorers recipe-levers sweep-speed soak constraints clean

# The library declares compatible ranges (pyproject.toml); make and CI install the exact tested set (constraints.txt).
$(STAMP): pyproject.toml constraints.txt tinydancer/routing/_candidate.c tinydancer/model/_bpe.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Re-resolve the newest versions the ranges allow into a scratch venv and write them to constraints.txt.
constraints:
	rm -rf .cache/lockvenv && $(PYTHON) -m venv .cache/lockvenv
	.cache/lockvenv/bin/pip install -q --upgrade pip && .cache/lockvenv/bin/pip install -q '.[dev]'
	{ head -n 2 constraints.txt; .cache/lockvenv/bin/pip freeze --exclude-editable | grep -v '^tinydancer'; } > constraints.new
	mv constraints.new constraints.txt

# Prometheus (promtool and a real server for the scrape test), Node.js (the original router, as an oracle) and a C
# compiler with Python's headers (Candidate's C fields; without them the install falls back to pure Python).
PY_HEADER := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)/Python.h
system-deps:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null || ! command -v npm >/dev/null \
	    || ! command -v gcc >/dev/null || [ ! -f "$(PY_HEADER)" ]; then \
	  echo "installing Debian packages: prometheus nodejs npm gcc python3-dev"; \
	  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus gcc python3-dev \
	    $$(command -v npm >/dev/null || echo nodejs npm) >/dev/null; \
	  rm -f /usr/sbin/policy-rc.d; \
	fi

# The C extensions (Candidate's fields, WordLlama's tokenizer) are built by the install where a C compiler is
# present; a venv made before one was (say by `make demo` on a machine without gcc, then `make test`, which installs
# them) gets them built here.
c-extension: $(STAMP)
	@$(PY) -c 'import tinydancer.routing._candidate, tinydancer.model._bpe' 2>/dev/null || $(PY) -m pip install -q --no-deps -e .

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
NOTEBOOKS := notebooks/01_explore_routing.ipynb notebooks/02_tune_thresholds.ipynb notebooks/03_retrain_calibrate.ipynb notebooks/04_observability_report.ipynb notebooks/05_serve_prompt_router.ipynb notebooks/06_close_the_loop.ipynb notebooks/07_bring_your_own_scorer.ipynb

# TINYDANCER_REQUIRE_ALL: a missing tool fails its test instead of skipping it.
test: system-deps $(STAMP) c-extension oracle lint typecheck
	TINYDANCER_REQUIRE_ALL=1 $(PY) -m pytest --doctest-modules tinydancer tests --nbval $(NOTEBOOKS) \
	  --nbval-sanitize-with notebooks/nbval_sanitize.cfg

# Execute every notebook at full size on the bundled real data and write HTML reports (with plots) to reports/.
report: $(STAMP) system-deps
	mkdir -p reports
	cd notebooks && TINYDANCER_NOTEBOOK_SIZE=$(NOTEBOOK_SIZE) ../$(VENV)/bin/jupyter nbconvert --to html --execute --output-dir ../reports \
	  --ExecutePreprocessor.timeout=1800 $(notdir $(ALL_NOTEBOOKS))

# Containers and many lab machines run as root, where Jupyter refuses to start without --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 --no-browser --notebook-dir notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Prometheus config, the guide's alert rules with promtool tests, the Grafana dashboard.
monitoring: $(STAMP)
	$(PY) -m tinydancer assets --out monitoring

parity: $(STAMP) oracle
	$(PY) -m pytest -p no:nbval -s tests/test_parity_original.py

bench: $(STAMP) oracle
	$(PY) -m benchmarks.run --out $(BENCH_OUT)

bench-quick: $(STAMP) oracle
	$(PY) -m benchmarks.run --quick --out $(BENCH_OUT)

# The EVALUATION.md table: FastGRNN vs TF-IDF + LR vs the original's trainRouter on the MMLU outcomes.
evaluate-mmlu: $(STAMP) oracle
	$(PY) -m benchmarks.evaluate_mmlu --data routellm-mmlu --out $(BENCH_OUT)/mmlu_eval.json

# EVALUATION.md's issue-14 tables: every scorer on both MMLU splits and small data, 5 seeds, bootstrap intervals;
# and the recipe's levers, one at a time, on validation-only rows.
evaluate-scorers: $(STAMP)
	$(PY) -m benchmarks.evaluate_scorers --out $(BENCH_OUT)/scorers_eval.json

recipe-levers: $(STAMP)
	$(PY) -m benchmarks.recipe_levers --out $(BENCH_OUT)/recipe_levers.json

# EVALUATION.md: M routers trained by one vmapped computation against a loop of M.
sweep-speed: $(STAMP)
	$(PY) -m benchmarks.sweep_speed --members 4 8 16 --out $(BENCH_OUT)/sweep_speed.json

soak: $(STAMP)
	$(PY) benchmarks/soak.py --quick

clean:
	rm -rf $(VENV) .cache reports build tinydancer/routing/_candidate.*.so

# Prompt routing on real MMLU prompts vs TF-IDF + LR and BERT-base on the CPU (issue 13; BENCHMARKS.md).
# torch + transformers (the bench-bert extra) go into the venv here only, when missing; without them the
# benchmark records BERT as "not installed". TORCH_PIP_ARGS: e.g. --index-url https://download.pytorch.org/whl/cpu
# for the CPU-only torch wheel (PyPI's pulls the CUDA libraries).
TORCH_PIP_ARGS ?=
.PHONY: bench-prompts
bench-prompts: $(STAMP)
	$(PY) -c 'import torch, transformers' 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIP_ARGS) -c constraints.txt -e '.[bench-bert]'
	$(PY) -m benchmarks.prompt_routing --out $(BENCH_OUT)
