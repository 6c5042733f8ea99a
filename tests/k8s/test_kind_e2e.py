"""End-to-end on a real kind cluster: `make kind-test` (scripts/ops/kind_test.sh) runs this file.

It brings the cluster up, installs the chart, waits until both SparkApplications are RUNNING and
tickets reach PostgreSQL, scales the producer from 1 to 3 replicas and checks that the ticket
rate grows, then runs `helm test`. It needs a running Docker daemon, kind, kubectl and helm, and
is opt-in (TICKET_PIPELINE_KIND_E2E=1, set by `make kind-test`) because it takes minutes; anywhere
else it is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from .render import CHART_DIR, REPO_ROOT

NAMESPACE = os.environ.get("KIND_NAMESPACE", "default")
RELEASE = "ticket-pipeline"


def _why_kind_cannot_run() -> str | None:
    """Return why this machine cannot run the kind test, or None if it can."""
    if shutil.which("docker") is None:
        return "docker is not installed: the kind test needs Docker"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info timed out: the Docker daemon does not answer"
    if info.returncode != 0:
        last_line = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"the Docker daemon is not reachable: {last_line}"
    if shutil.which("kubectl") is None:
        return "kubectl is not installed: the kind test needs it"
    if os.environ.get("TICKET_PIPELINE_KIND_E2E") != "1":
        return "opt-in end-to-end test on kind (takes minutes): run `make kind-test`"
    return None


_SKIP_REASON = _why_kind_cannot_run()
pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=str(_SKIP_REASON))


def _run(*command: str, timeout: float = 1800) -> None:
    """Run a command from the repository root with .local/bin (pinned helm and kind) first on PATH,
    as a fresh make when it is make."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env["PATH"] = f"{REPO_ROOT / '.local' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, timeout=timeout)


@pytest.mark.timeout(3600)
def test_should_run_the_pipeline_on_kind_and_grow_with_the_producer() -> None:
    """Up, RUNNING, rows in PostgreSQL, 3x producers give a higher ticket rate, helm test passes."""
    from scripts.ops.cluster_status import Cluster, ticket_rate, wait_until_running

    _run("make", "kind-up", timeout=3600)
    _run(
        "helm", "upgrade", "--install", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE,
        "--set", "producer.replicas=1", "--wait", "--timeout", "15m",
    )  # fmt: skip
    cluster = Cluster(NAMESPACE)

    state = wait_until_running(cluster.state, timeout_seconds=900)
    assert state.tickets > 0
    rate_one = ticket_rate(cluster.state, sample_seconds=60)
    assert rate_one > 0

    cluster.scale_producer(3)
    deadline = time.monotonic() + 300
    while cluster.producer_replicas()[0] < 3:
        assert time.monotonic() < deadline, "the producer did not reach 3 ready replicas"
        time.sleep(5)
    time.sleep(30)  # let the new replicas' tickets reach the sink
    rate_three = ticket_rate(cluster.state, sample_seconds=60)
    assert rate_three > 1.5 * rate_one, (rate_one, rate_three)

    _run("helm", "test", RELEASE, "--namespace", NAMESPACE, "--logs", timeout=900)
