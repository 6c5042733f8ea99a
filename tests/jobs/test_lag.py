"""Consumer lag of the Spark jobs is visible to Kafka tools, through a mirrored consumer group."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from jobs import aggregation, enrichment
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import job_settings, produce

pytestmark = pytest.mark.integration


def group_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Sum over partitions of (latest offset - committed offset); None while nothing is committed.

    Asked by a consumer of the group that never joins it, with the same OffsetFetch request as
    Kafka's tools: the admin client's list_consumer_group_offsets can crash the process on a new
    group (see dashboard.snapshot.LagReader).
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        committed = {
            tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=10) if tp.offset >= 0
        }
        if not committed:
            return None
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in wanted}
        return sum(ends[p] - committed.get(p, 0) for p in ends)
    finally:
        consumer.close()


def wait_for_lag(bootstrap: str, group: str, topic: str, expected: int, timeout_seconds: float = 30) -> int:
    deadline, lag = time.monotonic() + timeout_seconds, None
    while time.monotonic() < deadline:
        lag = group_lag(bootstrap, group, topic)
        if lag == expected:
            return lag
        time.sleep(0.5)
    return lag


def test_each_job_commits_its_offsets_to_a_named_group_whose_lag_reaches_zero(
    spark, kafka_broker, topic, writer_url, tmp_path
):
    """Lag shows the unprocessed tickets while a job is stopped, and drops to 0 once it drains."""
    from jobs.streaming import start_query

    bootstrap = kafka_broker.bootstrap_servers
    generator = TicketGenerator(seed=12)

    def drain(module) -> str:
        group = f"lag-{topic}-{module.SPEC.name}"
        settings = job_settings(module, bootstrap, topic, writer_url, tmp_path, "--consumer-group", group)
        running = start_query(spark, module.SPEC, settings)
        try:
            running.query.processAllAvailable()
            assert wait_for_lag(bootstrap, group, topic, 0) == 0
        finally:
            running.stop()
        return group

    def produce_tickets(n: int) -> None:
        tickets = [generator.ticket() for _ in range(n)]
        produce(bootstrap, topic, [(t["client_id"].encode(), encode(t)) for t in tickets])

    produce_tickets(200)
    groups = [drain(enrichment), drain(aggregation)]

    produce_tickets(120)  # the jobs are stopped: their groups now lag by exactly 120
    assert [group_lag(bootstrap, g, topic) for g in groups] == [120, 120]

    assert [drain(enrichment), drain(aggregation)] == groups  # caught up again: lag 0 (asserted inside)
