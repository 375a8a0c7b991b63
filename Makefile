# Two commands for users: `make run` and `make test`. Everything else is for developers.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ONCE ?=
ARGS ?=
PROFILE ?= embedded
BENCH ?= quick
ifeq ($(PROFILE),services)
# The loopback-only defaults infra/s3.sh starts the store with; set your own in the env.
export AWS_ACCESS_KEY_ID ?= socialsuggest
export AWS_SECRET_ACCESS_KEY ?= socialsuggest-local-secret
endif

SERVICES ?= s3 elasticsearch postgres

.PHONY: run stop status test lint typecheck check bench lock clean-state help services-up services-down services-status

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml infra/bootstrap.sh
	@bash infra/bootstrap.sh "$(VENV)"
	@touch $(STAMP)

run: $(STAMP) $(if $(filter services,$(PROFILE)),services-up)  ## Airflow + MLflow + API, first daily retrain, then serve (ONCE=1: `airflow dags test` it and exit; PROFILE=services: real services)
	SOCIALSUGGEST_PROFILE=$(PROFILE) $(VENV)/bin/socialsuggest stack $(if $(ONCE),once,up) $(ARGS)

stop:  ## stop everything `make run` started (by PID file and marker)
	$(VENV)/bin/socialsuggest stack down

status:  ## what `make run` started: PIDs, processes, memory
	$(VENV)/bin/socialsuggest stack status

test: $(STAMP)  ## the whole test suite (three pytest processes: infra/test-suite.sh); ARGS=...: plain pytest
	$(if $(ARGS),$(VENV)/bin/pytest $(ARGS),bash infra/test-suite.sh $(VENV))

lint: $(STAMP)  ## ruff lint + format check
	$(VENV)/bin/ruff check src tests dags benchmarks plugins
	$(VENV)/bin/ruff format --check src tests dags benchmarks plugins

typecheck: $(STAMP)  ## mypy on src/
	$(VENV)/bin/mypy

check: lint typecheck test  ## everything CI cares about

bench: $(STAMP)  ## benchmarks (BENCH=quick|full)
	$(PY) benchmarks/run.py --profile $(BENCH)

lock:  ## recompile requirements.txt from requirements.in
	$(VENV)/bin/uv pip compile requirements.in -o requirements.txt --python-version 3.11

services-up: $(STAMP)  ## start real services (infra/<name>.sh up): $(SERVICES)
	@for s in $(SERVICES); do bash infra/$$s.sh up || exit 1; done

services-down:  ## stop the services this checkout started (by PID file)
	@for s in $(SERVICES); do bash infra/$$s.sh down; done

services-status:  ## are they running?
	@for s in $(SERVICES); do bash infra/$$s.sh status || true; done

clean-state:  ## delete embedded state under ./var (lake, catalog, MLflow, Airflow)
	rm -rf var
