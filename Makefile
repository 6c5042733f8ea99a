# ticket-pipeline: the two commands of README are `make run` and `make test`.
# Every target installs what it needs (venv, jars, helm) on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCAL := .local
JARS := $(LOCAL)/jars
HELM_VERSION := v3.21.4
HELM := $(LOCAL)/bin/helm
PYTEST_ARGS ?=

.PHONY: help run test lint bench faults install jars helm clean-data

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[jobs,k8s,dev]'
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the dependencies

$(JARS)/.resolved: images/jars/pom.xml images/jars/settings.xml scripts/resolve_jars.sh
	bash scripts/resolve_jars.sh $(JARS)
	@touch $@

jars: $(JARS)/.resolved ## Resolve the JVM jars (Kafka broker, Spark connector) from Maven Central

$(HELM):
	@command -v go >/dev/null || { echo "Go is required to build helm (https://go.dev/dl/)"; exit 1; }
	GOBIN=$(abspath $(LOCAL)/bin) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm: $(HELM) ## Build the pinned helm into .local/bin

run: install jars ## Run the whole pipeline embedded: Kafka, PostgreSQL, producer, both Spark jobs
	$(PY) -m scripts.run_embedded $(ARGS)

test: install jars helm ## Run every test (unit, integration, chart checks)
	PATH="$(abspath $(LOCAL)/bin):$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

bench: install jars ## Measure throughput and latency beside the baselines; writes bench/results/latest.*
	$(PY) -m scripts.bench $(ARGS)

faults: install jars ## Run only the fault-injection suite (part of make test too)
	$(PY) -m pytest tests/faults -s $(PYTEST_ARGS)

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean-data: ## Delete the embedded broker, database, checkpoints and logs (keeps venv and jars)
	rm -rf $(LOCAL)/run

-include k8s/kind.mk
