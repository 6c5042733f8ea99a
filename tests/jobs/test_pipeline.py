"""Both jobs end to end against a real broker, a real PostgreSQL and real Spark.

A known set of tickets, malformed records and resent duplicates is produced; both
queries run until the topic is drained; then the three tables must hold exactly
what the contract says. A replayed micro-batch and a restart from the checkpoint
must change nothing.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka import Producer

from core.contract import TYPE_TEAMS, reject_reason
from core.kafka import PASSWORD_ENV, KafkaConnection, client_config
from core.settings import load
from jobs import aggregation, enrichment
from jobs.dead_letters import PREVIEW_BYTES
from jobs.settings import AggregationSettings, EnrichmentSettings
from jobs.streaming import start_query
from producer.generator import TicketGenerator, encode
from tests.conftest import kafka_flags
from tests.jobs.test_validation import CORPUS

pytestmark = pytest.mark.integration


def produce(kafka: KafkaConnection, topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer(client_config(kafka, {"enable.idempotence": True, "acks": "all"}))
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def job_settings(
    module, kafka: KafkaConnection, topic: str, database_url: str, checkpoints: Path, *extra: str
):
    """Settings of one job for a test: its own checkpoint, small batches, no trigger delay."""
    settings_class = EnrichmentSettings if module is enrichment else AggregationSettings
    argv = [
        *kafka_flags(kafka),
        "--topic", topic,
        "--database-url", database_url,
        "--checkpoint-dir", str(checkpoints / module.SPEC.name),
        "--trigger-interval-seconds", "0",
        "--max-offsets-per-trigger", "150",
        *(["--console-rows", "2"] if module is enrichment else []),
        *extra,
    ]  # fmt: skip
    return load(settings_class, argv, environ={PASSWORD_ENV: kafka.sasl_password})


def run_job(spark, module, kafka: KafkaConnection, topic: str, database_url: str, checkpoints: Path) -> None:
    """Run one job's query until everything in the topic is processed, then stop it."""
    running = start_query(spark, module.SPEC, job_settings(module, kafka, topic, database_url, checkpoints))
    try:
        running.query.processAllAvailable()
    finally:
        running.stop()
    assert running.query.exception() is None


def run_both_jobs(spark, kafka: KafkaConnection, topic: str, database_url: str, checkpoints: Path) -> None:
    """Run each job's query until everything in the topic is processed, then stop it."""
    for module in (enrichment, aggregation):
        run_job(spark, module, kafka, topic, database_url, checkpoints)


# A type whose last ticket moved to another type (see test_duplicates) keeps a 0 row.
AGGREGATION_COUNTS = "SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0"


LETTER_COLUMNS = "raw_value, raw_value_bytes, raw_value_sha256"


def dead_letter(reason: str, raw: bytes | None) -> tuple:
    """What tickets_rejected holds of a record: reason, value preview, size, sha-256."""
    if raw is None:
        return reason, b"", -1, b""
    return reason, raw[:PREVIEW_BYTES], len(raw), hashlib.sha256(raw).digest()


def stored_letter(reason: str, preview, size, sha256) -> tuple:
    """A row of (reason, LETTER_COLUMNS) in dead_letter's shape."""
    if preview is None:
        return reason, b"", -1, b""
    return reason, bytes(preview), size, bytes(sha256)


def fetch(database_url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def assert_tables_hold(database_url: str, tickets: list[dict], bad: list[bytes | None]) -> None:
    """tickets = every valid ticket once with its team; rejects = every bad record; counts exact."""
    stored = fetch(
        database_url, "SELECT ticket_id::text, client_id, type, priority, team, request FROM tickets"
    )
    expected = {
        t["ticket_id"]: (t["client_id"], t["type"], t["priority"], TYPE_TEAMS[t["type"]], t["request"])
        for t in tickets
    }
    assert len(stored) == len(expected)
    assert {row[0]: row[1:] for row in stored} == expected

    rejected = fetch(database_url, f"SELECT reason, {LETTER_COLUMNS} FROM tickets_rejected")
    assert sorted(stored_letter(*row) for row in rejected) == sorted(
        dead_letter(reject_reason(v), v) for v in bad
    )

    counts = dict(fetch(database_url, AGGREGATION_COUNTS))
    group_by = dict(fetch(database_url, "SELECT type, count(*) FROM tickets GROUP BY type"))
    assert counts == group_by
    assert sum(counts.values()) == len(expected)


def test_valid_tickets_are_stored_once_and_bad_records_rejected(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """Every valid ticket lands once with its team, every bad record with its reason, counts exact."""
    generator = TicketGenerator(clients=40, seed=5)
    tickets = [generator.ticket() for _ in range(400)]
    resent = tickets[:25]  # a producer retry after a lost ack sends the same ticket again
    records = [(t["client_id"].encode(), encode(t)) for t in [*tickets, *resent]]
    records += [(b"bad", value) for value in CORPUS]
    produce(kafka_connection, topic, records)

    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)

    assert_tables_hold(database_url, tickets, CORPUS)
    # Nothing lost: every record produced is accepted, rejected, or a resent duplicate.
    accepted = fetch(database_url, "SELECT count(*) FROM tickets")[0][0]
    rejected = fetch(database_url, "SELECT count(*) FROM tickets_rejected")[0][0]
    assert accepted + rejected + len(resent) == len(records)
    lineage = fetch(
        database_url,
        "SELECT count(*) FROM tickets WHERE kafka_topic = %s AND kafka_offset >= 0"
        " AND enriched_at >= kafka_timestamp AND stored_at >= enriched_at",
        (topic,),
    )
    assert lineage == [(len(tickets),)]


def test_a_replayed_batch_and_a_restart_change_nothing(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """Deleting the last commit makes Spark replay a batch; rows and counts stay exact."""
    generator = TicketGenerator(clients=40, seed=6)
    first = [generator.ticket() for _ in range(200)]
    produce(kafka_connection, topic, [(t["client_id"].encode(), encode(t)) for t in first])
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    assert_tables_hold(database_url, first, [])

    # A crash between the database commit and the checkpoint commit: the batch is replayed.
    for job in ("enrichment", "aggregation"):
        commits = sorted((tmp_path / job / "commits").glob("[0-9]*"), key=lambda p: int(p.name))
        assert commits, f"{job} committed no batch"
        commits[-1].unlink()
        crc = commits[-1].with_name(f".{commits[-1].name}.crc")
        crc.unlink(missing_ok=True)

    second = [generator.ticket() for _ in range(150)]
    produce(kafka_connection, topic, [(t["client_id"].encode(), encode(t)) for t in second])
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    assert_tables_hold(database_url, first + second, [])


def test_a_new_checkpoint_rereading_the_topic_adds_nothing(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """Even a lost checkpoint (full re-read from earliest) neither duplicates nor recounts."""
    generator = TicketGenerator(clients=40, seed=8)
    tickets = [generator.ticket() for _ in range(150)]
    produce(kafka_connection, topic, [(t["client_id"].encode(), encode(t)) for t in tickets])
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    shutil.rmtree(tmp_path / "enrichment")
    shutil.rmtree(tmp_path / "aggregation")
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    assert_tables_hold(database_url, tickets, [])
