"""The Kafka broker stops for ~20 s during production, then comes back on the same data.

A dedicated broker (own data folder and ports) is used, so the session's broker is
untouched. The producer keeps running: librdkafka retries idempotently (message
timeout 300 s). The jobs keep running, or exit and are restarted by a supervisor
loop, as `make run` or the Spark operator would.
"""

from __future__ import annotations

import time

import pytest

from scripts.embedded.kafka_broker import KafkaBroker
from tests.conftest import KAFKA_JARS, free_port
from tests.faults.helpers import (
    Pipeline,
    assert_exact,
    log,
    new_topic,
    read_ledger,
    report,
    topic_ticket_ids,
    wait_until_drained,
)

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

OUTAGE_SECONDS = 20


def test_a_broker_stopped_for_twenty_seconds_loses_and_doubles_no_ticket(
    postgres_server, writer_url, tmp_path, fault_random, record_property
):
    """With the broker stopped ~20 s while the producer runs, every acknowledged ticket is
    stored exactly once once the broker is back, and the aggregation equals the GROUP BY."""
    started = time.monotonic()
    broker = KafkaBroker(
        tmp_path / "kafka", KAFKA_JARS, port=free_port(), controller_port=free_port(), heap="512m"
    )
    broker.start()
    pipeline = None
    try:
        topic = new_topic(broker.bootstrap_servers, "client_tickets")
        pipeline = Pipeline(
            bootstrap=broker.bootstrap_servers,
            topic=topic,
            database_url=writer_url,
            password=postgres_server.writer_password,
            work_dir=tmp_path,
            rate=300,
            seed=fault_random.randrange(1 << 30),
            # Bigger batches than the kill test's: these tests need no many-batch window,
            # and the backlog of the outage drains faster.
            max_offsets_per_trigger=2000,
        )
        pipeline.start_jobs()
        # Production starts once the drivers are up, so that the backlog stays small.
        pipeline.wait_until_jobs_up()
        pipeline.start_producer()
        pipeline.wait_for_rows(tickets=1, counted=1, timeout_seconds=180)
        pipeline.sleep(fault_random.uniform(0, 2))

        log(f"STOPPING the broker for ~{OUTAGE_SECONDS}s")
        down = time.monotonic()
        broker.stop()
        stopped = time.monotonic() - down
        pipeline.sleep(max(0.0, OUTAGE_SECONDS - stopped))
        broker.start()
        outage = time.monotonic() - down
        log(f"broker stopped in {stopped:.1f}s, back after {outage:.1f}s in all")
        before = len(read_ledger(pipeline.ledger))
        # Production goes on after the outage; the jobs must pick it up.
        pipeline.sleep(5)
        pipeline.wait_for_rows(tickets=before + 1, counted=before + 1, timeout_seconds=180)

        assert pipeline.stop_producer() == 0, pipeline.producer.tail()
        ledger = read_ledger(pipeline.ledger)
        state = wait_until_drained(pipeline, ledger, timeout_seconds=180)
        codes = pipeline.stop_jobs()
        in_topic = topic_ticket_ids(broker.bootstrap_servers, topic)

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
