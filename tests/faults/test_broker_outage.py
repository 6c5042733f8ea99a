"""The Kafka broker stops for ~20 s during production, then comes back on the same data.

A dedicated broker (own data folder and ports; SASL_SSL, as the session's) is used, so
the session's broker is untouched; it restarts with the same CA, users and passwords, kept
in its folder. The producer keeps running: librdkafka retries idempotently (message
timeout 300 s). The jobs keep running, or exit and are restarted by a supervisor
loop, as `make run` or the Spark operator would.
"""

from __future__ import annotations

import time

import pytest

from scripts.embedded.kafka_broker import KafkaBroker
from tests.conftest import KAFKA_JARS, free_port
from tests.faults.database import read_ledger
from tests.faults.end_state import assert_exact, report, wait_until_drained
from tests.faults.pipeline import outage_pipeline, stop_for_a_while
from tests.faults.topics import new_topic, topic_ticket_ids

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]


def test_a_broker_stopped_for_twenty_seconds_loses_and_doubles_no_ticket(
    postgres_server, writer_url, tmp_path, fault_random, record_property
):
    """With the broker stopped ~20 s while the producer runs, every acknowledged ticket is
    stored exactly once once the broker is back, and the aggregation equals the GROUP BY."""
    started = time.monotonic()
    broker = KafkaBroker(
        tmp_path / "kafka",
        KAFKA_JARS,
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
        secure=True,
    )
    broker.start()
    pipeline = None
    try:
        kafka = broker.connection()
        topic = new_topic(kafka, "client_tickets")
        pipeline = outage_pipeline(
            kafka=kafka,
            topic=topic,
            database_url=writer_url,
            password=postgres_server.writer_password,
            work_dir=tmp_path,
            rng=fault_random,
        )
        outage = stop_for_a_while(pipeline, "the broker", broker.stop, broker.start)
        before = len(read_ledger(pipeline.ledger))
        # Production goes on after the outage; the jobs must pick it up.
        pipeline.sleep(5)
        pipeline.wait_for_rows(tickets=before + 1, counted=before + 1, timeout_seconds=180)

        assert pipeline.stop_producer() == 0, pipeline.producer.tail()
        ledger = read_ledger(pipeline.ledger)
        state = wait_until_drained(pipeline, ledger, timeout_seconds=180)
        codes = pipeline.stop_jobs()
        in_topic = topic_ticket_ids(kafka, topic)

        report(
            record_property,
            "broker outage",
            state,
            started,
            outage_s=round(outage, 1),
            restarts=sum(pipeline.restarts.values()),
            restarts_by_job=dict(pipeline.restarts) or "none",
            records_in_topic=sum(in_topic.values()),
        )
        assert_exact(state, pipeline)
        assert codes == {"enrichment": 0, "aggregation": 0}, pipeline.tails()
    finally:
        if pipeline is not None:
            pipeline.close()
        broker.kill()
