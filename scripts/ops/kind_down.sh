#!/usr/bin/env bash
# Delete ticket-pipeline's kind cluster, with everything in it (releases, volumes, images).
# Run it through `make kind-down`.
set -euo pipefail
[ -n "${KIND_CLUSTER:-}" ] || { echo "KIND_CLUSTER is not set: run this through 'make kind-down'" >&2; exit 2; }
command -v kind >/dev/null || { echo "kind is required: 'make kind' builds it into .local/bin" >&2; exit 1; }
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  kind delete cluster --name "$KIND_CLUSTER"
else
  echo "no kind cluster named $KIND_CLUSTER"
fi
