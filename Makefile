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
# promtool (alert rule tests) and prometheus (end-to-end test), from the Prometheus Go module
# (v0.3xx.y is Prometheus 3.xx.y).
PROMETHEUS_MODULE_VERSION := v0.316.0
PROMTOOL := $(LOCAL)/bin/promtool
PROMETHEUS := $(LOCAL)/bin/prometheus
# The Kubeflow Spark operator release: its chart and CRDs come from its Go module, checked
# against this go.sum hash (tests validate against its CRD; make kind-up installs its chart).
SPARK_OPERATOR_VERSION := 2.5.2
SPARK_OPERATOR_SUM := h1:6nX2UhwSfnYi1mtwczgFfJTMeLSL/1ajTvkFe8R7Vdc=
SPARK_OPERATOR_DIR := $(LOCAL)/spark-operator-$(SPARK_OPERATOR_VERSION)
# The prometheus-operator release whose CRDs (PodMonitor, PrometheusRule) the chart's optional
# monitoring objects are validated against offline; from its Go module, checked like the above.
PROMETHEUS_OPERATOR_VERSION := 0.94.0
PROMETHEUS_OPERATOR_SUM := h1:VxMKzqr8Xqw5/QInNT7a3B5XInPnHqE7SD2UIdwKpRM=
PROMETHEUS_OPERATOR_DIR := $(LOCAL)/prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION)
# Every step that can take more than a few seconds prints a progress line while it is silent.
PROGRESS := $(PYTHON) scripts/setup/with_progress.py
PYTEST_ARGS ?=

.PHONY: help run test check lint format bench faults install jars helm promtool prometheus spark-operator prometheus-operator-crds quix clean-data

##@ Help

help: ## List the targets, by section
	@awk 'BEGIN { FS = ":.*## " } \
	  /^##@ / { printf "\n%s\n", substr($$0, 5) } \
	  /^[a-zA-Z_-]+:.*## / { printf "  %-26s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PROGRESS) "creating the virtualenv $(VENV)" -- $(PYTHON) -m venv $(VENV)
	$(PROGRESS) "upgrading pip" -- $(PY) -m pip install --quiet --upgrade pip
	$(PROGRESS) "installing the Python packages (first time: ~600 MB, pyspark is most of it)" -- \
	  $(PY) -m pip install --progress-bar off -e '.[jobs,k8s,dashboard,embedded,dev]'
	@touch $@

##@ Set-up (each runs on first use of the targets that need it)

install: $(VENV)/.installed ## Create .venv and install the dependencies

$(JARS)/.resolved: images/jars/pom.xml images/jars/settings.xml scripts/setup/resolve_jars.sh
	$(PROGRESS) "resolving the JVM jars from Maven Central (first time: ~150 MB)" -- \
	  bash scripts/setup/resolve_jars.sh $(JARS)
	@touch $@

jars: $(JARS)/.resolved ## Resolve the JVM jars (Kafka broker, Spark connector) from Maven Central

$(HELM):
	@command -v go >/dev/null || { echo "Go is required to build helm (https://go.dev/dl/)"; exit 1; }
	$(PROGRESS) "building helm $(HELM_VERSION) with Go (first time: 1-3 min)" -- \
	  env GOBIN=$(abspath $(LOCAL)/bin) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

helm: $(HELM) ## Build the pinned helm into .local/bin

$(PROMTOOL):
	@command -v go >/dev/null || { echo "Go is required to build promtool (https://go.dev/dl/)"; exit 1; }
	$(PROGRESS) "building promtool (Prometheus $(PROMETHEUS_MODULE_VERSION)) with Go (first time: 2-5 min)" -- \
	  env GOBIN=$(abspath $(LOCAL)/bin) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_MODULE_VERSION)

promtool: $(PROMTOOL) ## Build the pinned promtool into .local/bin

$(PROMETHEUS): | $(PROMTOOL)
	$(PROGRESS) "building prometheus $(PROMETHEUS_MODULE_VERSION) with Go, for the end-to-end test (first time: 2-5 min)" -- \
	  env GOBIN=$(abspath $(LOCAL)/bin) go install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_MODULE_VERSION)

prometheus: $(PROMETHEUS) ## Build the pinned Prometheus server into .local/bin (no web UI assets; the API is all the tests use)

$(SPARK_OPERATOR_DIR)/SOURCE: scripts/setup/fetch_go_module.sh
	$(PROGRESS) "fetching the Spark operator $(SPARK_OPERATOR_VERSION) chart and CRDs (Go module)" -- \
	  bash scripts/setup/fetch_go_module.sh github.com/kubeflow/spark-operator/v2@v$(SPARK_OPERATOR_VERSION) \
	  '$(SPARK_OPERATOR_SUM)' charts/spark-operator-chart $(SPARK_OPERATOR_DIR)

spark-operator: $(SPARK_OPERATOR_DIR)/SOURCE ## Fetch the pinned Spark operator chart and CRDs into .local

$(PROMETHEUS_OPERATOR_DIR)/SOURCE: scripts/setup/fetch_go_module.sh
	$(PROGRESS) "fetching the prometheus-operator $(PROMETHEUS_OPERATOR_VERSION) CRDs (Go module)" -- \
	  bash scripts/setup/fetch_go_module.sh github.com/prometheus-operator/prometheus-operator@v$(PROMETHEUS_OPERATOR_VERSION) \
	  '$(PROMETHEUS_OPERATOR_SUM)' example/prometheus-operator-crd $(PROMETHEUS_OPERATOR_DIR)

prometheus-operator-crds: $(PROMETHEUS_OPERATOR_DIR)/SOURCE ## Fetch the pinned prometheus-operator CRDs into .local

# quix-streams, a contender of `make bench`, pins an older Kafka client: it gets a virtualenv of
# its own, with the project and the `bench` extra.
QUIX_VENV := $(LOCAL)/quix-venv
$(QUIX_VENV)/.installed: pyproject.toml
	$(PROGRESS) "creating the virtualenv $(QUIX_VENV) (quix-streams, a bench contender)" -- $(PYTHON) -m venv $(QUIX_VENV)
	$(PROGRESS) "installing quix-streams into $(QUIX_VENV)" -- \
	  $(QUIX_VENV)/bin/python -m pip install --quiet --progress-bar off -e '.[bench]'
	@touch $@

quix: $(QUIX_VENV)/.installed ## Create .local/quix-venv for the bench's quix-streams contender

##@ The two commands, and the edit loop

run: install jars ## Run the whole pipeline embedded: Kafka, PostgreSQL, producer, both Spark jobs
	$(PY) -m scripts.embedded $(ARGS)

# What the tests find on PATH and in the environment: the pinned tools and upstream files.
TEST_ENV := PATH="$(abspath $(LOCAL)/bin):$$PATH" \
  SPARK_OPERATOR_CHART="$(abspath $(SPARK_OPERATOR_DIR))/spark-operator-chart" \
  PROMETHEUS_OPERATOR_CRDS="$(abspath $(PROMETHEUS_OPERATOR_DIR))/prometheus-operator-crd"

test: install jars helm promtool prometheus spark-operator prometheus-operator-crds quix ## Run every test (unit, integration, chart checks)
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

check: lint helm promtool spark-operator prometheus-operator-crds ## The edit loop: lint, then the tests that start no service (under a minute)
	$(TEST_ENV) $(PY) -m pytest -q -m "not integration and not services" $(PYTEST_ARGS)

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Fix what ruff can: imports, lint fixes, formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

faults: install jars ## Run only the fault-injection suite (part of make test too)
	$(PY) -m pytest tests/faults -s $(PYTEST_ARGS)

##@ Measurements

bench: install jars quix ## Measure throughput and latency beside the baselines; writes bench/results/latest.*
	$(PY) -m scripts.bench $(ARGS)

##@ Data

# Under root, PostgreSQL's files may live outside the clone (docs/embedded.md, "Where data lives"); the
# link .local/run/postgres/server then says where.
clean-data: ## Delete the embedded broker, database, checkpoints, Delta table and logs (keeps venv and jars)
	if [ -L $(LOCAL)/run/postgres/server ]; then rm -rf "$$(readlink $(LOCAL)/run/postgres/server)"; fi
	rm -rf $(LOCAL)/run

-include k8s/kind.mk
-include k8s/cluster.mk
