"""The enrichment's Delta query against a real broker, PostgreSQL, Spark and a Delta table in
a folder: the table holds the tickets of `tickets`, each once; a batch that Spark runs
again after a crash between the Delta commit and its checkpoint commit changes nothing; a
write that fails ends the job.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyspark.errors import StreamingQueryException

from core.kafka import KafkaConnection, spark_options
from jobs import enrichment
from jobs.delta_query import CHECKPOINT_SUBDIR, DeltaQuery, valid_tickets
from jobs.streaming import start_query
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import fetch, job_settings, produce
from tests.jobs.test_validation import CORPUS

pytestmark = pytest.mark.integration


def delta_settings(kafka: KafkaConnection, topic: str, database_url: str, tmp_path: Path, table: str):
    """The enrichment's settings with a Delta table in `tmp_path`, no trigger delay, and a
    compaction (and a vacuum) every 2 batches."""
    return job_settings(
        enrichment,
        kafka,
        topic,
        database_url,
        tmp_path,
        *("--delta-table-uri", str(tmp_path / table)),
        *("--delta-trigger-interval-seconds", "0"),
        *("--delta-compact-every-batches", "2"),
        *("--delta-vacuum-retention-hours", "0"),
    )


def run_enrichment(spark, settings) -> list[dict]:
    """Run both queries of the enrichment until the topic is processed; return the Delta
    query's progress reports."""
    running = start_query(spark, enrichment.SPEC, settings)
    assert running.side is not None
    try:
        running.query.processAllAvailable()
        running.side.processAllAvailable()
    finally:
        running.stop()
    assert running.exception() is None
    return list(running.side.recentProgress)


def delta_positions(uri: str) -> dict[str, tuple[int, int]]:
    """(kafka_partition, kafka_offset) of each ticket_id of the table; every id once."""
    rows = DeltaTable(uri).to_pyarrow_table(columns=["ticket_id", "kafka_partition", "kafka_offset"])
    positions = {row["ticket_id"]: (row["kafka_partition"], row["kafka_offset"]) for row in rows.to_pylist()}
    assert len(positions) == rows.num_rows, "a ticket_id is stored more than once"
    return positions


def postgres_positions(database_url: str) -> dict[str, tuple[int, int]]:
    rows = fetch(database_url, "SELECT ticket_id::text, kafka_partition, kafka_offset FROM tickets")
    return {ticket_id: (partition, offset) for ticket_id, partition, offset in rows}


def produce_tickets(kafka: KafkaConnection, topic: str, tickets: list[dict]) -> None:
    produce(kafka, topic, [(t["client_id"].encode(), encode(t)) for t in tickets])


def test_the_delta_table_holds_the_tickets_of_postgresql_each_once(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """After a run over valid tickets, resent copies and invalid records, the table's ticket
    ids are those of `tickets`, each once, as the same copies (same Kafka position)."""
    generator = TicketGenerator(clients=40, seed=11)
    tickets = [generator.ticket() for _ in range(300)]
    produce_tickets(kafka_connection, topic, tickets)
    produce(kafka_connection, topic, [(b"bad", value) for value in CORPUS])
    produce_tickets(kafka_connection, topic, tickets[:25])  # resent after a lost ack

    settings = delta_settings(kafka_connection, topic, writer_url, tmp_path, "tickets-delta")
    progress = run_enrichment(spark, settings)

    uri = settings.delta_table_uri
    in_delta = delta_positions(uri)
    assert len(in_delta) == len(tickets)
    assert in_delta == postgres_positions(database_url)
    batches = [p["batchId"] for p in progress if p["numInputRows"]]
    assert len(batches) >= 2
    assert DeltaTable(uri).transaction_version(progress[-1]["id"]) == max(batches)
    history = [commit["operation"] for commit in DeltaTable(uri).history()]
    assert "OPTIMIZE" in history and "VACUUM END" in history


def test_a_batch_replayed_after_a_crash_before_the_checkpoint_commit_changes_nothing(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """Deleting the Delta query's last checkpoint commit (a kill -9 after the Delta commit):
    the restarted query runs that batch again and skips it, committing nothing. The batch
    writer called twice with one batch id writes once. Later tickets are stored as usual."""
    generator = TicketGenerator(clients=40, seed=12)
    first = [generator.ticket() for _ in range(200)]
    produce_tickets(kafka_connection, topic, first)
    settings = delta_settings(kafka_connection, topic, writer_url, tmp_path, "tickets-delta")
    run_enrichment(spark, settings)
    uri = settings.delta_table_uri
    version = DeltaTable(uri).version()

    commits = tmp_path / enrichment.SPEC.name / CHECKPOINT_SUBDIR / "commits"
    last = max(commits.glob("[0-9]*"), key=lambda p: int(p.name))
    last.unlink()
    last.with_name(f".{last.name}.crc").unlink(missing_ok=True)

    progress = run_enrichment(spark, settings)
    # The batch ran again, and was skipped before its rows were read.
    assert {p["batchId"] for p in progress} == {int(last.name)}
    assert DeltaTable(uri).version() == version
    assert delta_positions(uri) == postgres_positions(database_url)

    # The batch writer on a static read of the topic, through the enrichment's own transform.
    by_hand = DeltaQuery(
        delta_settings(kafka_connection, topic, writer_url, tmp_path, "by-hand"), str(tmp_path / "unused")
    )
    raw = spark.read.format("kafka").options(**spark_options(kafka_connection)).option("subscribe", topic)
    batch = valid_tickets(enrichment.enrich(raw.load()))
    assert by_hand.write_batch(batch, 0, "by-hand").inserted == len(first)
    assert by_hand.write_batch(batch, 0, "by-hand").skipped
    assert by_hand.table.version() == 1
    assert delta_positions(by_hand.table.uri) == delta_positions(uri)

    second = [generator.ticket() for _ in range(100)]
    produce_tickets(kafka_connection, topic, second)
    run_enrichment(spark, settings)
    assert DeltaTable(uri).version() > version
    assert len(delta_positions(uri)) == len(first) + len(second)
    assert delta_positions(uri) == postgres_positions(database_url)


def test_a_delta_write_that_fails_is_the_jobs_failure(spark, kafka_connection, topic, writer_url, tmp_path):
    """Another writer replaces the table by one of another schema: the Delta query's next batch
    fails with delta-rs's error, which the job sees (run_job then stops both queries, exit 1)."""
    generator = TicketGenerator(clients=10, seed=13)
    produce_tickets(kafka_connection, topic, [generator.ticket() for _ in range(20)])
    settings = delta_settings(kafka_connection, topic, writer_url, tmp_path, "tickets-delta")
    running = start_query(spark, enrichment.SPEC, settings)
    try:
        running.side.processAllAvailable()
        other = pa.table({"ticket_id": ["x"], "n": [1]})
        write_deltalake(
            settings.delta_table_uri, other, mode="overwrite", schema_mode="overwrite", partition_by=["n"]
        )
        produce_tickets(kafka_connection, topic, [generator.ticket() for _ in range(5)])
        with pytest.raises(StreamingQueryException):
            running.side.processAllAvailable()
        assert running.query.isActive
        assert not running.all_active()
        assert "kafka_timestamp" in str(running.exception())
    finally:
        running.stop()
