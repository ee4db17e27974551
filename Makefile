# ridelake — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON   ?= python3
VENV     ?= .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.ridelake-installed
DATA     ?= data/ncr_ride_bookings.csv
ROWS     ?= 150000
SEED     ?= 42
PARAMS   ?= params/default.yaml
J        ?=
SEL      ?=
ARGS     ?=
WAREHOUSE ?=
SOURCE_FILE ?= $(DATA)
EXTRACTION_DATE ?=
EXTRACTION_MONTH ?=
TARGET_DATE ?=
TESTS    ?= tests
FORCE    ?=
RUN      ?=
NO_CODE  ?=
TABLE    ?=
Q        ?=
OUT      ?=
OLDER_THAN ?= 7d
RELIABILITY_ROWS ?= 3000

# Options passed to every runner command, built from the variables above.
RUN_OPTS := --params $(PARAMS) $(if $(J),-j $(J)) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(if $(FORCE),--force)

.PHONY: help venv data init pipeline run bronze silver gold incremental backfill runs show lab test bench reliability report history sql rollback maintain clean clean-warehouse

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: PARAMS=$(PARAMS) J=<jobs> SEL=<selectors> FORCE=1 WAREHOUSE=<path> ROWS=$(ROWS) SEED=$(SEED) ARGS=<more options>"

# The environment: conda when it is on PATH (environment.yml), else a venv with pip (requirements.txt).
# Rebuilt when the dependency files change; registers the `ridelake` Jupyter kernel inside it.
$(STAMP): requirements.txt pyproject.toml environment.yml
	@if [ ! -x "$(PY)" ] || ! "$(PY)" -c 'import sys' 2>/dev/null; then \
	  rm -rf "$(VENV)"; \
	  if command -v conda >/dev/null 2>&1; then \
	    echo ">> creating $(VENV) with conda from environment.yml"; \
	    conda env create --quiet --prefix "$(VENV)" --file environment.yml; \
	  else \
	    echo ">> creating $(VENV) with $(PYTHON) -m venv (no conda on PATH)"; \
	    $(PYTHON) -m venv "$(VENV)"; \
	  fi; \
	fi
	@echo ">> installing pinned dependencies (requirements.txt) and ridelake (editable)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@$(PY) -m ipykernel install --sys-prefix --name ridelake --display-name "Python (ridelake)" >/dev/null
	@touch $@

venv: $(STAMP) ## create or refresh the environment (.venv) and its Jupyter kernel

$(DATA): | $(STAMP)
	@echo ">> $(DATA) is absent: generating $(ROWS) synthetic rows (seed $(SEED)); put a real file there to use it instead"
	@$(PY) -m ridelake generate --rows $(ROWS) --seed $(SEED) --out $(DATA)

data: $(DATA) ## generate data/ncr_ride_bookings.csv unless a file is already there

init: $(STAMP) ## create the catalog, namespaces and tables (safe to repeat)
	@$(PY) -m ridelake init $(if $(WAREHOUSE),--warehouse $(WAREHOUSE))

pipeline: $(STAMP) $(DATA) ## set up, generate data if absent, run all notebooks [PARAMS= J= WAREHOUSE=]
	@$(PY) -m ridelake run $(RUN_OPTS) $(ARGS)

run: $(STAMP) ## run selected notebooks: make run SEL="silver/customer+" [ARGS=--dry-run]
	@$(PY) -m ridelake run $(RUN_OPTS) $(SEL) $(ARGS)

bronze: $(STAMP) ## load one delivery: make bronze SOURCE_FILE=f.csv EXTRACTION_DATE=2024-12-31 [EXTRACTION_MONTH=]
	@$(PY) -m ridelake bronze $(RUN_OPTS) --source-file $(SOURCE_FILE) $(if $(EXTRACTION_DATE),--extraction-date $(EXTRACTION_DATE)) $(if $(EXTRACTION_MONTH),--extraction-month $(EXTRACTION_MONTH)) $(ARGS)

silver: $(STAMP) ## rebuild silver [EXTRACTION_MONTH=YYYY-MM]
	@$(PY) -m ridelake silver $(RUN_OPTS) $(if $(EXTRACTION_MONTH),--extraction-month $(EXTRACTION_MONTH)) $(ARGS)

gold: $(STAMP) ## rebuild gold [TARGET_DATE=YYYY-MM-DD]
	@$(PY) -m ridelake gold $(RUN_OPTS) $(if $(TARGET_DATE),--target-date $(TARGET_DATE)) $(ARGS)

incremental: $(STAMP) ## bronze for one delivery, silver for its months, then gold: SOURCE_FILE= EXTRACTION_DATE=
	@$(PY) -m ridelake incremental $(RUN_OPTS) --source-file $(SOURCE_FILE) $(if $(EXTRACTION_DATE),--extraction-date $(EXTRACTION_DATE)) $(ARGS)

backfill: $(STAMP) ## rebuild silver and gold from what bronze holds
	@$(PY) -m ridelake backfill $(RUN_OPTS) $(ARGS)

runs: $(STAMP) ## list the run records, newest first (consecutive no-op runs on one line) [ARGS=--limit N]
	@$(PY) -m ridelake runs $(ARGS)

show: $(STAMP) ## one run's table, or the tables a rollback moved: make show [RUN=<run_id>] (default the latest)
	@$(PY) -m ridelake show $(RUN) $(ARGS)

report: $(STAMP) ## rebuild a run's HTML report (outputs/runs/<run>/index.html): make report [RUN=<run_id>] [NO_CODE=1]
	@$(PY) -m ridelake report $(RUN) $(if $(NO_CODE),--no-code)

history: $(STAMP) ## a table's snapshots with run and notebook, newest first: make history TABLE=silver.booking
	@$(PY) -m ridelake history $(TABLE) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(ARGS)

sql: $(STAMP) ## DuckDB SQL over the tables: make sql Q="SELECT ... FROM gold.daily_booking_summary" [RUN=<run_id> (as of)] [OUT=f.csv|f.parquet]
	@if [ -z "$$Q" ]; then echo 'usage: make sql Q="SELECT ... FROM gold.daily_booking_summary" [RUN=<run_id>] [OUT=file.csv|file.parquet]' >&2; exit 2; fi
	@$(PY) -m ridelake sql "$$Q" $(if $(RUN),--as-of $(RUN)) $(if $(OUT),--out $(OUT)) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(ARGS)

rollback: $(STAMP) ## put every table a run changed back to before it: make rollback RUN=<run_id> [ARGS=--force]
	@if [ -z "$(RUN)" ]; then echo "make rollback needs RUN=<id>: the run to undo; \`make runs\` lists the run ids (a unique prefix is enough)" >&2; exit 2; fi
	@$(PY) -m ridelake rollback $(RUN) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(ARGS)

maintain: $(STAMP) ## expire old snapshots, delete unreferenced files: make maintain [OLDER_THAN=7d] [ARGS=--dry-run]
	@$(PY) -m ridelake maintain --older-than $(OLDER_THAN) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(ARGS)

lab: $(STAMP) ## open JupyterLab on the notebooks (kernel "Python (ridelake)")
	@$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

test: $(STAMP) ## run the whole test suite (installs everything it needs), after the import-linter contracts
	@$(VENV)/bin/lint-imports --no-cache
	@$(PY) -m pytest $(TESTS) $(ARGS)

bench: $(STAMP) ## pipeline (warm and fresh kernels) beside its engine floor and DuckDB [BENCH_SIZES=150000,1500000 BENCH_RUNS=3 BENCH_SKIP=fresh]
	@$(PY) -m ridelake.bench $(ARGS)

reliability: $(STAMP) ## fault suite: every scenario of issue 12 on a throw-away copy, one table, exit 1 on a failure [RELIABILITY_ROWS=3000 ARGS="--kills N --quick --only RE"]
	@$(PY) -m ridelake.reliability --rows $(RELIABILITY_ROWS) $(ARGS)

clean-warehouse: ## delete the warehouse's tables and catalog (keeps the folder)
	@find warehouse -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

clean: ## remove the environment, run records and the warehouse contents
	@rm -rf $(VENV) .pytest_cache
	@find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	@find warehouse -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
