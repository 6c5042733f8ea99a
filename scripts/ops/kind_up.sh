#!/usr/bin/env bash
# Bring up ticket-pipeline's kind cluster: the cluster, the Kubeflow Spark operator, and our three
# images (spark, producer, dashboard) built and loaded into the node. Idempotent: an existing cluster is reused.
# Run it through `make kind-up`, which sets the pinned versions and image names (k8s/kind.mk).
# Then: helm install ticket-pipeline charts/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

for var in KIND_CLUSTER KIND_CONFIG KIND_NAMESPACE KIND_SPARK_OPERATOR_VERSION \
  KIND_SPARK_OPERATOR_CHART KIND_SPARK_OPERATOR_VALUES KIND_SPARK_IMAGE KIND_PRODUCER_IMAGE \
  KIND_DASHBOARD_IMAGE; do
  [ -n "${!var:-}" ] || { echo "$var is not set: run this through 'make kind-up'" >&2; exit 2; }
done
need() { command -v "$1" >/dev/null || { echo "$1 is required: $2" >&2; exit 1; }; }
need docker "install Docker (https://docs.docker.com/engine/install/)"
need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
need kind "'make kind' builds it into .local/bin"
need helm "'make helm' builds it into .local/bin"
docker info >/dev/null 2>&1 || { echo "the Docker daemon is not reachable ('docker info' fails)" >&2; exit 1; }

step() { printf '\n==> %s\n' "$*"; }

step "kind cluster $KIND_CLUSTER ($KIND_CONFIG)"
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  echo "exists, reusing it"
else
  kind create cluster --name "$KIND_CLUSTER" --config "$KIND_CONFIG" --wait 180s
fi
kubectl config use-context "kind-$KIND_CLUSTER" >/dev/null
kubectl get namespace "$KIND_NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$KIND_NAMESPACE"

step "images $KIND_SPARK_IMAGE, $KIND_PRODUCER_IMAGE and $KIND_DASHBOARD_IMAGE (build context: the repository root)"
docker build -f images/spark/Dockerfile -t "$KIND_SPARK_IMAGE" .
docker build -f images/producer/Dockerfile -t "$KIND_PRODUCER_IMAGE" .
docker build -f images/dashboard/Dockerfile -t "$KIND_DASHBOARD_IMAGE" .
kind load docker-image "$KIND_SPARK_IMAGE" "$KIND_PRODUCER_IMAGE" "$KIND_DASHBOARD_IMAGE" --name "$KIND_CLUSTER"

# The chart's other images (Redpanda, Console, PostgreSQL) are pulled by the node itself; loading
# them now only makes `helm install` faster, so a failure here is a warning.
preload_third_party_images() {
  local kube_version image
  kube_version="$(sed -n 's|^[[:space:]]*image:[[:space:]]*kindest/node:v\([0-9.]*\).*|\1|p' "$KIND_CONFIG")"
  helm template ticket-pipeline charts/ --kube-version "$kube_version" \
    | sed -n 's/^[[:space:]]*image:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' \
    | sort -u | grep -vxF -e "$KIND_SPARK_IMAGE" -e "$KIND_PRODUCER_IMAGE" -e "$KIND_DASHBOARD_IMAGE" \
    | while read -r image; do
        if docker image inspect "$image" >/dev/null 2>&1 || docker pull --quiet "$image" >/dev/null; then
          if kind load docker-image "$image" --name "$KIND_CLUSTER" >/dev/null; then
            echo "loaded $image"
          else
            echo "warning: could not load $image; the node will pull it"
          fi
        else
          echo "warning: could not pull $image; the node will pull it"
        fi
      done
}
step "third-party images of the chart (optional preload)"
preload_third_party_images || echo "warning: preload skipped; the node will pull the images"

# The chart comes from the operator's Go module at the pinned version, checked against its go.sum
# hash (make spark-operator), not from a chart repository.
step "Spark operator $KIND_SPARK_OPERATOR_VERSION from $KIND_SPARK_OPERATOR_CHART (release spark-operator, namespace spark-operator)"
bash scripts/ops/install_spark_operator.sh

step "ready"
cat <<EOT
The cluster runs the Spark operator and holds our three images. Next:
  export PATH="\$PWD/.local/bin:\$PATH"       # the pinned helm and kind
  helm install ticket-pipeline charts/
  make status                                 # waits for RUNNING and the first tickets
  make port-forward                           # Console :8080, Spark UIs :4040 and :4041, dashboard :8050
EOT
