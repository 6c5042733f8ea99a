"""The worst batch: records as large as the topic admits, about 5 GB of them in one batch.

The enrichment job runs as `make run` runs it, with the shipped settings (a 1g driver that
is also the executor in local mode, MAX_OFFSETS_PER_TRIGGER of 200,000). Every record is
junk of the largest size the topic takes, with a large key: each becomes a dead letter of
bounded size, stored by the executors as they stream the batch. The job must neither fail
nor restart, take everything in one batch, and store the valid tickets produced after the
junk.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from core.contract import TOPIC_MAX_MESSAGE_BYTES
from core.kafka import KafkaConnection, admin_client, client_config
from core.scrape import value
from producer.generator import TicketGenerator, encode
from producer.topic import ensure_topic
from scripts.embedded.ports import free_port
from tests.conftest import kafka_flags
from tests.faults.database import query
from tests.faults.processes import PYTHON, Process, base_env, log

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

# About 5 GB: several times the shipped 1g driver, far below MAX_OFFSETS_PER_TRIGGER.
JUNK_RECORDS = 20_000
KEY = b"k" * 8192
# One record a batch on the broker, no compression: the value fills what is left.
VALUE = b"x" * (TOPIC_MAX_MESSAGE_BYTES - len(KEY) - 512)


def produce_junk(kafka: KafkaConnection, topic: str, count: int) -> None:
    producer = Producer(
        client_config(kafka, {"linger.ms": 5, "batch.size": TOPIC_MAX_MESSAGE_BYTES,
                              "enable.idempotence": True, "acks": "all"})
    )  # fmt: skip
    started = time.monotonic()
    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=KEY, value=VALUE)
                break
            except BufferError:
                producer.poll(0.5)
        if i and i % 2000 == 0:
            log(f"worst batch: {i} of {count} junk records produced ({time.monotonic() - started:.0f}s)")
    assert producer.flush(300) == 0


def test_a_batch_of_the_largest_records_neither_exhausts_the_driver_nor_stops_the_job(
    kafka_connection, postgres_server, writer_url, tmp_path
):
    """With the shipped memory settings, a batch of 5 GB of the largest records the topic
    admits is stored as bounded dead letters; the job never restarts, and the valid
    tickets after them are stored."""
    kafka, password = kafka_connection, postgres_server.writer_password
    topic = f"worst_{int(time.time())}"
    admin = admin_client(kafka)
    assert ensure_topic(admin, topic, 1, 30)
    junk = JUNK_RECORDS
    log(f"worst batch: {junk} records of {len(KEY) + len(VALUE):,} bytes")
    produce_junk(kafka, topic, junk)
    generator = TicketGenerator(seed=31)
    tickets = [generator.ticket() for _ in range(50)]
    after = Producer(client_config(kafka))
    for ticket in tickets:
        after.produce(topic, key=ticket["client_id"].encode(), value=encode(ticket))
    assert after.flush(30) == 0

    command = [
        PYTHON, "-m", "jobs.enrichment", *kafka_flags(kafka), "--topic", topic,
        "--database-url", writer_url, "--checkpoint-dir", str(tmp_path / "checkpoint"),
        "--ui-port", str(free_port()), "--console-rows", "0", "--progress-interval-seconds", "10",
        "--metrics-port", str(metrics_port := free_port()),
    ]  # fmt: skip
    env = base_env(postgres_server.writer_password, tmp_path, kafka)
    job = Process("enrichment", command, env, tmp_path / "logs", metrics_port=metrics_port)
    job.start()
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert job.alive, f"the job ended ({job.exited()}):\n{job.tail()}"
            stored = query(writer_url, password, "SELECT count(*) FROM tickets")[0][0]
            if stored == len(tickets):
                break
            time.sleep(2)
        letters = query(
            writer_url,
            password,
            "SELECT count(*), max(octet_length(raw_key) + octet_length(raw_value)), min(raw_value_bytes)"
            " FROM tickets_rejected",
        )[0]
        log_text = job.log_path.read_text(errors="replace")
        samples = job.scrape()
        assert job.alive, job.tail()
    finally:
        job.terminate()
        admin.delete_topics([topic])[topic].result(60)
    assert stored == len(tickets), log_text[-3000:]
    assert letters[0] == junk
    assert letters[1] <= 2 * 4096 and letters[2] == len(VALUE)
    assert "at most 200000 records per micro-batch" in log_text
    # Everything was in the topic before the job started: one batch took it all.
    assert value(samples, "ticket_pipeline_records_read_total", job_name="enrichment") == junk + len(tickets)
    assert value(samples, "ticket_pipeline_batches_total", job_name="enrichment") == 1
    assert job.starts == 1
