#!/usr/bin/env bash
# End-to-end test on a real kind cluster (`make kind-test`): tests/k8s/test_kind_e2e.py brings
# the cluster up (`make kind-up`), installs the chart, waits until both SparkApplications
# are RUNNING, checks that tickets land in PostgreSQL, scales the producer and checks that the
# ticket rate grows, then runs `helm test`. Where Docker cannot run it is skipped, and pytest
# prints the reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export TICKET_PIPELINE_KIND_E2E=1
exec "${PY:-python3}" -m pytest tests/k8s/test_kind_e2e.py -v -rs
