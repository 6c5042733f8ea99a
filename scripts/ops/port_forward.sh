#!/usr/bin/env bash
# Forward the pipeline's UIs to localhost until Ctrl-C:
#   http://localhost:8080  Redpanda Console (topics, messages, consumer groups)
#   http://localhost:4040  Spark UI of enrichment  (svc/enrichment-ui-svc, the chart's uiPort)
#   http://localhost:4041  Spark UI of aggregation (svc/aggregation-ui-svc)
#   http://localhost:8050  the live dashboard      (svc/dashboard; none with dashboard.enable=false)
# The Spark UI Services exist only while a driver runs and change pods when the operator
# restarts a job, so each forward waits for its Service and reconnects when it drops.
set -euo pipefail
ns="${KIND_NAMESPACE:-default}"
command -v kubectl >/dev/null || { echo "kubectl is required" >&2; exit 1; }

pids=()
forward() {
  local service=$1 ports=$2 what=$3
  (
    child=""
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 0' INT TERM
    while :; do
      if kubectl get -n "$ns" "service/$service" >/dev/null 2>&1; then
        kubectl port-forward -n "$ns" "service/$service" "$ports" >/dev/null 2>&1 &
        child=$!
        wait "$child" || true
        child=""
      fi
      sleep 3
    done
  ) &
  pids+=("$!")
  printf '  http://localhost:%-5s %s (svc/%s)\n' "${ports%%:*}" "$what" "$service"
}

echo "Forwarding (namespace $ns; Ctrl-C to stop):"
forward console 8080:8080 "Redpanda Console"
forward enrichment-ui-svc 4040:4040 "Spark UI of enrichment"
forward aggregation-ui-svc 4041:4041 "Spark UI of aggregation"
forward dashboard 8050:8050 "live dashboard"
trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 0' INT TERM
wait
