#!/usr/bin/env bash
# Install (or upgrade) the Kubeflow Spark operator as release `spark-operator` in namespace
# `spark-operator`, from the chart of its pinned Go module (make spark-operator), with
# k8s/spark-operator-values.yaml and any extra values files given as arguments (later wins);
# then the rights its chart lacks for Spark 4.2's submissions (k8s/spark-operator-rbac.yaml).
# The job namespaces listed in those values must exist first.
# Usage: KIND_SPARK_OPERATOR_CHART=... KIND_SPARK_OPERATOR_VALUES=... install_spark_operator.sh [values.yaml ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for var in KIND_SPARK_OPERATOR_CHART KIND_SPARK_OPERATOR_VALUES; do
  [ -n "${!var:-}" ] || { echo "$var is not set: run this through make (k8s/kind.mk)" >&2; exit 2; }
done
[ -f "$KIND_SPARK_OPERATOR_CHART/Chart.yaml" ] || {
  echo "no chart at $KIND_SPARK_OPERATOR_CHART: run 'make spark-operator'" >&2; exit 1; }
values=(--values "$KIND_SPARK_OPERATOR_VALUES")
for extra in "$@"; do values+=(--values "$extra"); done
helm upgrade --install spark-operator "$KIND_SPARK_OPERATOR_CHART" \
  --namespace spark-operator --create-namespace \
  "${values[@]}" \
  --wait --timeout 10m
kubectl apply -f k8s/spark-operator-rbac.yaml
