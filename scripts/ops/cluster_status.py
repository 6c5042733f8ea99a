"""Print the state of ticket-pipeline on Kubernetes, optionally after waiting until it runs.

Talks to the cluster of the current kubectl context (kind-ticket-pipeline after `make kind-up`)
with the kubernetes Python client. Row counts come from psql run inside the PostgreSQL pod
(`kubectl exec`), so the password never leaves the cluster.

Usage (from the repository root; `make status` runs the second line):
    python -m scripts.ops.cluster_status               # the state now
    python -m scripts.ops.cluster_status --wait 600    # first wait (600 s at most) until both
                                                   # SparkApplications RUN and tickets arrive
    python -m scripts.ops.cluster_status --rate 30     # also measure tickets/s over 30 s
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.contract import TABLES as CONTRACT_TABLES

__all__ = [
    "SPARK_APPLICATIONS",
    "TABLES",
    "Cluster",
    "PipelineState",
    "format_state",
    "is_running",
    "main",
    "parse_counts",
    "row_count_sql",
    "ticket_rate",
    "wait_until_running",
]

logger = logging.getLogger(__name__)

SPARK_APPLICATIONS = ("enrichment", "aggregation")
SPARK_GROUP, SPARK_VERSION, SPARK_PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
POSTGRESQL_POD, POSTGRESQL_CONTAINER = "postgresql-0", "postgresql"
PRODUCER_DEPLOYMENT = "producer"
# The pipeline's output tables, in the order they are printed; the first holds the tickets.
TABLES = (CONTRACT_TABLES.tickets, CONTRACT_TABLES.rejected, CONTRACT_TABLES.aggregation)
RUNNING = "RUNNING"
MISSING = -1


@dataclass(frozen=True)
class PipelineState:
    """A snapshot of the pipeline: Spark jobs, producer replicas and rows per table."""

    applications: dict[str, str]
    producer_ready: int
    producer_desired: int
    rows: dict[str, int]
    taken_at: float = field(default_factory=time.time)

    @property
    def tickets(self) -> int:
        """Rows of the tickets table (MISSING when the table does not exist yet)."""
        return self.rows.get(TABLES[0], MISSING)


def is_running(state: PipelineState) -> bool:
    """True once both SparkApplications are RUNNING and the tickets table has rows."""
    return all(state.applications.get(app) == RUNNING for app in SPARK_APPLICATIONS) and state.tickets > 0


def row_count_sql(tables: Sequence[str] = TABLES) -> str:
    """One query that counts each table's rows, or -1 for a table that does not exist yet."""
    names = ", ".join(f"'{table}'" for table in tables)
    return (
        "SELECT t, CASE WHEN to_regclass(t) IS NULL THEN -1 ELSE (xpath('/row/c/text()', "
        "query_to_xml(format('SELECT count(*) AS c FROM %I', t), false, true, '')))[1]"
        "::text::bigint END "
        f"FROM unnest(ARRAY[{names}]) AS t"
    )


def parse_counts(output: str, tables: Sequence[str] = TABLES) -> dict[str, int]:
    """Parse psql -At output ('table|count' lines) into counts; absent tables count as MISSING."""
    counts = dict.fromkeys(tables, MISSING)
    for line in output.splitlines():
        name, sep, value = line.strip().partition("|")
        if sep and name in counts and value.lstrip("-").isdigit():
            counts[name] = int(value)
    return counts


def format_state(state: PipelineState, rate: float | None = None) -> str:
    """Render a state as the lines `make status` prints."""
    lines = ["Spark applications:"]
    lines += [f"  {app:<12} {state.applications.get(app, 'not found')}" for app in SPARK_APPLICATIONS]
    lines.append(f"producer:      {state.producer_ready}/{state.producer_desired} replicas ready")
    lines.append("PostgreSQL rows:")
    for table in TABLES:
        rows = state.rows.get(table, MISSING)
        lines.append(f"  {table:<20} {'table missing' if rows == MISSING else rows}")
    if rate is not None:
        lines.append(f"ticket rate:   {rate:.1f} rows/s into {TABLES[0]}")
    return "\n".join(lines)


class Cluster:
    """The pipeline's objects in one namespace, read through the kubernetes client."""

    def __init__(self, namespace: str = "default", context: str | None = None) -> None:
        from kubernetes import client, config

        config.load_kube_config(context=context)
        self.namespace = namespace
        self._core = client.CoreV1Api()
        self._apps = client.AppsV1Api()
        self._custom = client.CustomObjectsApi()

    def application_states(self) -> dict[str, str]:
        """State of each SparkApplication (status.applicationState.state), 'not found' if absent."""
        from kubernetes.client.exceptions import ApiException

        states = {}
        for name in SPARK_APPLICATIONS:
            try:
                app = self._custom.get_namespaced_custom_object(
                    SPARK_GROUP, SPARK_VERSION, self.namespace, SPARK_PLURAL, name
                )
            except ApiException as error:
                if error.status != 404:
                    raise
                states[name] = "not found"
                continue
            state = app.get("status", {}).get("applicationState", {}).get("state")
            states[name] = state or "NEW"
        return states

    def producer_replicas(self) -> tuple[int, int]:
        """(ready, desired) replicas of the producer Deployment."""
        deployment = self._apps.read_namespaced_deployment(PRODUCER_DEPLOYMENT, self.namespace)
        return deployment.status.ready_replicas or 0, deployment.spec.replicas or 0

    def scale_producer(self, replicas: int) -> None:
        """Scale the producer Deployment, like `kubectl scale deploy producer --replicas N`."""
        self._apps.patch_namespaced_deployment_scale(
            PRODUCER_DEPLOYMENT, self.namespace, {"spec": {"replicas": replicas}}
        )

    def row_counts(self) -> dict[str, int]:
        """Rows per table, counted by psql inside the PostgreSQL pod with the pod's own password."""
        return parse_counts(self.psql(row_count_sql()))

    def psql(self, query: str) -> str:
        """Run one query with psql inside the PostgreSQL pod, as the owner; return `psql -At` output."""
        from kubernetes.stream import stream

        script = (
            'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U "$POSTGRES_USER" '
            f'-d "$POSTGRES_DB" -X -At -c "{query}"'
        )
        return stream(
            self._core.connect_get_namespaced_pod_exec,
            POSTGRESQL_POD,
            self.namespace,
            container=POSTGRESQL_CONTAINER,
            command=["sh", "-c", script],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )

    def state(self) -> PipelineState:
        """Take a snapshot of the whole pipeline."""
        ready, desired = self.producer_replicas()
        return PipelineState(
            applications=self.application_states(),
            producer_ready=ready,
            producer_desired=desired,
            rows=self.row_counts(),
        )


def wait_until_running(
    snapshot: Callable[[], PipelineState],
    timeout_seconds: float,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PipelineState:
    """Poll ``snapshot`` until is_running; raise TimeoutError with the last state otherwise."""
    deadline = clock() + timeout_seconds
    while True:
        try:
            state = snapshot()
        except Exception as error:  # the pods may not exist yet right after `helm install`
            logger.info("not ready yet: %s", error)
            state = None
        if state is not None and is_running(state):
            return state
        if clock() >= deadline:
            last = format_state(state) if state else "no state could be read"
            raise TimeoutError(f"pipeline not running after {timeout_seconds:.0f}s:\n{last}")
        sleep(poll_seconds)


def ticket_rate(
    snapshot: Callable[[], PipelineState],
    sample_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Rows per second added to the tickets table over ``sample_seconds``."""
    first = snapshot()
    sleep(sample_seconds)
    last = snapshot()
    elapsed = max(last.taken_at - first.taken_at, 1e-9)
    return (last.tickets - first.tickets) / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of `make status`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="default", help="namespace of the release")
    parser.add_argument("--context", default=None, help="kubectl context (default: current)")
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait until both jobs are RUNNING and tickets arrive",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        metavar="SECONDS",
        help="measure the ticket rate over this many seconds",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from kubernetes.config.config_exception import ConfigException

    try:
        cluster = Cluster(args.namespace, args.context)
    except ConfigException as error:
        print(f"no cluster to talk to ({error}); run `make kind-up` first", file=sys.stderr)
        return 1
    try:
        if args.wait:
            print(f"waiting up to {args.wait:.0f}s for RUNNING jobs and tickets...", file=sys.stderr)
            state = wait_until_running(cluster.state, args.wait)
        else:
            state = cluster.state()
    except TimeoutError as error:
        print(error, file=sys.stderr)
        return 1
    rate = ticket_rate(cluster.state, args.rate) if args.rate else None
    if args.json:
        print(json.dumps({**_jsonable(asdict(state)), "rate": rate}, indent=2))
    else:
        print(format_state(state, rate))
    return 0


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "taken_at"}


if __name__ == "__main__":
    sys.exit(main())
