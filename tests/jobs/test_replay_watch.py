"""A job that keeps failing on the same micro-batch is told apart from a single replay, and
the batch and its offsets are named (real Kafka, PostgreSQL and Spark)."""

from __future__ import annotations

import logging

import psycopg2
import pytest

from jobs import enrichment
from jobs.replay_watch import ATTEMPTS_FILE, note_start
from jobs.streaming import start_query
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import fetch, job_settings, produce

pytestmark = pytest.mark.integration


def set_insert(database_url: str, role: str, allowed: bool) -> None:
    verb = "GRANT INSERT ON tickets TO" if allowed else "REVOKE INSERT ON tickets FROM"
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"{verb} {role}")
    conn.close()


def run_once(spark, settings) -> Exception | None:
    running = start_query(spark, enrichment.SPEC, settings)
    try:
        running.query.processAllAvailable()
    except Exception:
        pass
    finally:
        running.stop()
    return running.query.exception()


def test_a_job_failing_again_and_again_on_one_batch_names_it_and_its_offsets(
    spark, kafka_connection, topic, database_url, writer_url, postgres_server, tmp_path, caplog
):
    """While PostgreSQL refuses the writer's INSERTs (not a data error: the batch fails), each
    start resumes the same batch; the third says it is stuck, with the batch and the offsets;
    once the cause is gone the batch is committed and the count is forgotten."""
    generator = TicketGenerator(seed=41)
    tickets = [generator.ticket() for _ in range(30)]
    produce(kafka_connection, topic, [(t["client_id"].encode(), encode(t)) for t in tickets])
    settings = job_settings(enrichment, kafka_connection, topic, writer_url, tmp_path)
    set_insert(database_url, postgres_server.writer, allowed=False)
    caplog.set_level(logging.INFO, logger="jobs.streaming")

    assert run_once(spark, settings) is not None  # batch 0 fails: no start resumed anything yet
    for start in (1, 2):
        assert run_once(spark, settings) is not None
        assert f"start {start} on it" in caplog.text
    assert run_once(spark, settings) is not None
    stuck = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f'started 3 times on micro-batch 0 (offsets the start to {{"{topic}"' in m for m in stuck), (
        stuck
    )

    set_insert(database_url, postgres_server.writer, allowed=True)
    assert run_once(spark, settings) is None
    assert fetch(database_url, "SELECT count(*) FROM tickets") == [(len(tickets),)]
    assert note_start(settings.checkpoint_dir) is None
    assert not (tmp_path / "enrichment" / ATTEMPTS_FILE).exists()


def test_an_object_store_checkpoint_is_not_watched():
    """Only a file system checkpoint is read without Spark: an object store URL is skipped."""
    assert note_start("s3a://bucket/checkpoints/enrichment") is None
