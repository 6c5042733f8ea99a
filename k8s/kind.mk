# Kubernetes on kind: included by the top Makefile (`-include k8s/kind.mk`).
#
#   make kind-up        kind cluster, Spark operator, our three images built and kind-loaded
#   helm install ticket-pipeline charts/
#   make port-forward   Console on 8080, Spark UIs on 4040/4041, dashboard on 8050
#   make status         wait until the pipeline runs, then print its state
#   make kind-test      end-to-end test on a real cluster (skipped where Docker cannot run)
#   make kind-down      delete the cluster
#
# Needs Docker (daemon running) and kubectl; builds the pinned kind and helm with Go into
# .local/bin. Every variable here starts with KIND_ so that none clashes with the Makefile's.

LOCAL ?= .local
HELM ?= $(LOCAL)/bin/helm

# Pinned tools and charts.
KIND_VERSION := v0.32.0
KIND_BIN := $(LOCAL)/bin/kind
# The operator's chart, fetched from its pinned Go module by the top Makefile (make spark-operator).
KIND_SPARK_OPERATOR_CHART := $(SPARK_OPERATOR_DIR)/spark-operator-chart
KIND_SPARK_OPERATOR_VALUES := k8s/spark-operator-values.yaml
# The cluster (its node image is pinned in the config: the Kubernetes version tests/k8s check).
KIND_CLUSTER := ticket-pipeline
KIND_CONFIG := k8s/kind-config.yaml
KIND_NAMESPACE := default
# Our images: tag = appVersion of charts/Chart.yaml, which the chart uses when its image.tag is "".
KIND_IMAGE_TAG := $(shell sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$$/\1/p' charts/Chart.yaml)
KIND_SPARK_IMAGE := ticket-pipeline/spark:$(KIND_IMAGE_TAG)
KIND_PRODUCER_IMAGE := ticket-pipeline/producer:$(KIND_IMAGE_TAG)
KIND_DASHBOARD_IMAGE := ticket-pipeline/dashboard:$(KIND_IMAGE_TAG)

# What the scripts get: the pins above, and .local/bin first on PATH (kind, helm).
KIND_ENV = PATH="$(abspath $(LOCAL)/bin):$$PATH" \
	KIND_CLUSTER="$(KIND_CLUSTER)" KIND_CONFIG="$(KIND_CONFIG)" KIND_NAMESPACE="$(KIND_NAMESPACE)" \
	KIND_SPARK_OPERATOR_VERSION="$(SPARK_OPERATOR_VERSION)" KIND_SPARK_OPERATOR_CHART="$(KIND_SPARK_OPERATOR_CHART)" \
	KIND_SPARK_OPERATOR_VALUES="$(KIND_SPARK_OPERATOR_VALUES)" \
	KIND_SPARK_IMAGE="$(KIND_SPARK_IMAGE)" KIND_PRODUCER_IMAGE="$(KIND_PRODUCER_IMAGE)" \
	KIND_DASHBOARD_IMAGE="$(KIND_DASHBOARD_IMAGE)"

.PHONY: kind kind-up kind-down port-forward status kind-test kind-images

$(KIND_BIN):
	@command -v go >/dev/null || { echo "Go is required to build kind (https://go.dev/dl/)"; exit 1; }
	GOBIN=$(abspath $(LOCAL)/bin) go install sigs.k8s.io/kind@$(KIND_VERSION)

##@ Kubernetes (kind)

kind: $(KIND_BIN) ## Build the pinned kind into .local/bin

kind-up: $(KIND_BIN) $(HELM) $(SPARK_OPERATOR_DIR)/SOURCE ## A kind cluster, the Spark operator, build and kind-load our three images
	$(KIND_ENV) bash scripts/ops/kind_up.sh

kind-down: $(KIND_BIN) ## Delete the kind cluster (images, volumes and all)
	$(KIND_ENV) bash scripts/ops/kind_down.sh

port-forward: ## Console on localhost:8080, Spark UIs on 4040 (enrichment) and 4041 (aggregation), dashboard on 8050
	$(KIND_ENV) bash scripts/ops/port_forward.sh

status: install ## Wait until both Spark jobs run and tickets arrive, then print the pipeline's state
	$(PY) -m scripts.ops.cluster_status --namespace $(KIND_NAMESPACE) --wait 600

kind-test: install ## End-to-end test on kind (up, RUNNING, rows, scale, rate grows); skipped without Docker
	$(KIND_ENV) PY="$(PY)" bash scripts/ops/kind_test.sh

kind-images: ## Print the image references that kind-up builds and loads
	@echo $(KIND_SPARK_IMAGE)
	@echo $(KIND_PRODUCER_IMAGE)
	@echo $(KIND_DASHBOARD_IMAGE)
