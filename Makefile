# The two commands of the README: `make materialize` (the whole asset graph on the embedded default) and `make test`.
# Both create .venv from requirements.lock first when it is missing or out of date; nothing else to set up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
DAGSTER_YAML ?= dagster.yaml
# Ports of the local UIs (all on 127.0.0.1): make ui UI_PORT=3001, make mlflow MLFLOW_PORT=5001, ...
UI_PORT ?= 3000
FILES_PORT ?= 3001
DASHBOARD_PORT ?= 8080
MLFLOW_PORT ?= 5000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export TQDM_DISABLE := 1
# MLflow 3's usage telemetry would reach the network (the mlflow UI too): off.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: materialize test ui home install dashboard mlflow optimize

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@PYTHON=$(PYTHON) scripts/prerequisites.sh install
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

home:
	mkdir -p "$(DAGSTER_HOME)"
	cp $(DAGSTER_YAML) "$(DAGSTER_HOME)/dagster.yaml"

# Each table's synthesis job in turn (TABLE=name: that one only), so its runs carry the job's name and tags.
materialize: install home
	@status=0; config=$$(mktemp --suffix=.json); trap 'rm -f "$$config"' EXIT; printf '%s' '$(or $(CONFIG),{})' > "$$config"; \
	for table in $(if $(TABLE),$(TABLE),$$($(VENV)/bin/python -m synth_platform.tables)); do \
	  echo "== table $$table: $${table}_synthesis_job"; \
	  time $(VENV)/bin/dagster job execute -m synth_platform.definitions -j $${table}_synthesis_job -c "$$config" || status=1; \
	done; echo "Report: $(DAGSTER_HOME)/synth_platform/reports/latest.json"; exit $$status

# Two pytest workers (pytest-xdist): most tests wait on subprocesses, servers and the daemon, so two at once on 2 cores
# take about 14 min instead of 28-37 one after another. --dist loadfile keeps a file's tests in one worker, so its
# module-scoped fixtures (trained models, materialized runs) are built once. TEST_WORKERS=0: one process, no workers.
TEST_WORKERS ?= 2
test: install
	@PYTHON=$(PYTHON) scripts/prerequisites.sh test
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

ui: install home
	cd "$(DAGSTER_HOME)" && PYTHONWARNINGS="ignore:Function \`dev_command\` is superseded" \
	  SYNTH_FILES_URL=http://127.0.0.1:$(FILES_PORT) SYNTH_MLFLOW_URL=http://127.0.0.1:$(MLFLOW_PORT) \
	  SYNTH_OPTUNA_DASHBOARD_URL=http://127.0.0.1:$(DASHBOARD_PORT) FILES_ROOT="$(DAGSTER_HOME)/synth_platform" FILES_PORT=$(FILES_PORT) \
	  FILES_PYTHON=$(abspath $(VENV))/bin/python $(CURDIR)/scripts/ui.sh $(abspath $(VENV))/bin/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

# One auto-optimizer step for a failed run, in-process on $(DAGSTER_HOME): make optimize RUN=<run id> [ARGS=--dry-run]
optimize: install home
	$(VENV)/bin/python -m synth_platform.cli optimize $(RUN) $(ARGS)

# Optuna studies (trials, parameters, Pareto fronts) in optuna-dashboard, on http://127.0.0.1:$(DASHBOARD_PORT)
dashboard: install
	$(VENV)/bin/optuna-dashboard $${SYNTH_OPTUNA_STORAGE:-sqlite:///$(DAGSTER_HOME)/synth_platform/optuna.sqlite3} --host 127.0.0.1 --port $(DASHBOARD_PORT)

# The MLflow runs of the studies (one per study, one nested run per trial), on http://127.0.0.1:$(MLFLOW_PORT)
# A local viewer: one uvicorn worker (default 4) and no job runner (MLFLOW_SERVER_ENABLE_JOB_EXECUTION; its huey
# consumers only run GenAI jobs: scorers, evaluations, prompt optimisation): it answers in about 5 s, not 8-18 s.
# MLflow 3.17's UI opens every experiment in its GenAI view until "Model training" is chosen in its sidebar, which the
# browser remembers; no server option or experiment tag changes that default (docs/tuning.md#mlflow).
mlflow: install
	@echo 'MLflow UI: http://127.0.0.1:$(MLFLOW_PORT) (choose "Model training" in its sidebar once: the browser keeps it)'
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///$(DAGSTER_HOME)/synth_platform/mlflow/mlflow.db} --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1
