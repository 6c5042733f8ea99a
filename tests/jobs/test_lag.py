"""Consumer lag of the Spark jobs is visible to Kafka tools, through a mirrored consumer group."""

from __future__ import annotations

import time

import pytest

from dashboard.lag import LagReader
from jobs import aggregation, enrichment
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import job_settings, produce

pytestmark = pytest.mark.integration


def wait_for_lag(reader: LagReader, group: str, expected: int, timeout_seconds: float = 30) -> int:
    """Poll the group's lag (latest offsets minus committed ones, read with the same OffsetFetch
    request as Kafka's tools) until it is `expected`; the last one read."""
    deadline, lag = time.monotonic() + timeout_seconds, None
    while time.monotonic() < deadline:
        lag = reader.read([group])[group]
        if lag == expected:
            return lag
        time.sleep(0.5)
    return lag


def test_each_job_commits_its_offsets_to_a_named_group_whose_lag_reaches_zero(
    spark, kafka_connection, topic, writer_url, tmp_path
):
    """Lag shows the unprocessed tickets while a job is stopped, and drops to 0 once it drains."""
    from jobs.streaming import start_query

    generator = TicketGenerator(seed=12)
    reader = LagReader(kafka_connection, topic, timeout_seconds=10)

    def drain(module) -> str:
        group = f"lag-{topic}-{module.SPEC.name}"
        settings = job_settings(
            module, kafka_connection, topic, writer_url, tmp_path, "--consumer-group", group
        )
        running = start_query(spark, module.SPEC, settings)
        try:
            running.query.processAllAvailable()
            assert wait_for_lag(reader, group, 0) == 0
        finally:
            running.stop()
        return group

    def produce_tickets(n: int) -> None:
        tickets = [generator.ticket() for _ in range(n)]
        produce(kafka_connection, topic, [(t["client_id"].encode(), encode(t)) for t in tickets])

    produce_tickets(200)
    groups = [drain(enrichment), drain(aggregation)]

    produce_tickets(120)  # the jobs are stopped: their groups now lag by exactly 120
    assert list(reader.read(groups).values()) == [120, 120]

    assert [drain(enrichment), drain(aggregation)] == groups  # caught up again: lag 0 (asserted inside)
