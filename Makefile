# Two entry points: `make run` (main job, default config) and `make test` (lint + tests).
# `make test-slurm` (root; not part of `make test`): the smoke workflow on a one-node SLURM cluster it sets up.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all
CONFIG ?= config.yaml

.PHONY: run test test-slurm lint env clean report

# pip compiles bytecode on one core; installing without it and compiling once with every core is ~20 s faster on 2.
# Test suites and pip/setuptools are never imported: skipping their 4,000 files saves another ~13 s. Bytecode
# matters where PYTHONDONTWRITEBYTECODE is set (as on our machines): every job would compile its imports again,
# histodistill's own modules included (`run` and `test` compile them: ~0.7 s less per job).
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q --no-compile torch==2.13.0
	$(BIN)/pip install -q --no-compile -r requirements.txt
	$(BIN)/pip install -q --no-compile --no-deps medmnist==3.0.2
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 -x '/tests/|site-packages/(pip|setuptools)/' \
		$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") >/dev/null || true
	touch $@

env: $(BIN)/.installed

run: env
	$(BIN)/python -m compileall -q histodistill
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)

# The paper's figures and tables for the current results of CONFIG, the self-contained HTML report and a screenshot
# of it opened in headless Chromium (Debian: apt-get install chromium). Runs whatever of CONFIG is not done yet.
RESULTS_DIR = $(shell $(BIN)/python -c "from histodistill.base import config_with_defaults as c, dataset_id as d; \
	x = c('$(CONFIG)'); print(x['results'] + '/' + d(x))" 2>/dev/null)
report: env
	$(BIN)/snakemake all figures --cores $(CORES) --configfile $(CONFIG)
	$(BIN)/snakemake figures --report $(RESULTS_DIR)/report.html --configfile $(CONFIG)
	$(BIN)/python -m histodistill.reporting.browser $(RESULTS_DIR)/report.html $(RESULTS_DIR)/report.png

lint: env
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --cores 1

test: lint
	$(BIN)/python -m compileall -q histodistill
	$(BIN)/python -m pytest -q -n 2 tests

test-slurm: env
	$(BIN)/python tests/cluster/slurm_harness.py --report results/slurm_test_report.txt

clean:
	rm -rf results/* .snakemake
