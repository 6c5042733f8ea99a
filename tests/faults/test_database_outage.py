"""PostgreSQL stops for ~20 s while both jobs write, then starts again on the same data.

A dedicated server (own folder and port) is used, so the session's database is
untouched. A batch that meets the outage retries with backoff
(DATABASE_RETRY_SECONDS, 120 s by default); a job that exits anyway is restarted by a
supervisor loop, and the restarts are counted.
"""

from __future__ import annotations

import time

import psycopg2
import pytest

from core.migrations import apply_migrations, grant_writer
from scripts.embedded.postgres_server import PostgresServer
from tests.conftest import free_port
from tests.faults.database import read_ledger
from tests.faults.end_state import assert_exact, report, wait_until_drained
from tests.faults.pipeline import outage_pipeline, stop_for_a_while

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]


def test_a_database_stopped_for_twenty_seconds_loses_and_doubles_no_ticket(
    kafka_connection, topic, tmp_path, fault_random, record_property
):
    """With PostgreSQL stopped ~20 s (fast shutdown: open transactions rolled back) while the
    jobs write, every acknowledged ticket is stored exactly once after it restarts, and the
    aggregation equals the GROUP BY."""
    started = time.monotonic()
    server = PostgresServer(tmp_path / "postgres", port=free_port())
    pipeline = None
    try:
        server.start()
        conn = psycopg2.connect(server.database_url, password=server.password)
        apply_migrations(conn)
        grant_writer(conn, server.writer, password=None)
        conn.close()
        pipeline = outage_pipeline(
            kafka=kafka_connection,
            topic=topic,
            database_url=server.writer_url,
            password=server.writer_password,
            work_dir=tmp_path,
            rng=fault_random,
        )
        outage = stop_for_a_while(
            pipeline, "PostgreSQL (fast shutdown)", lambda: server.stop("fast"), server.start
        )
        pipeline.sleep(5)

        assert pipeline.stop_producer() == 0, pipeline.producer.tail()
        ledger = read_ledger(pipeline.ledger)
        state = wait_until_drained(pipeline, ledger, timeout_seconds=180)
        codes = pipeline.stop_jobs()
        retries = pipeline.database_retries()

        report(
            record_property,
            "database outage",
            state,
            started,
            outage_s=round(outage, 1),
            batch_retries=retries,
            restarts=sum(pipeline.restarts.values()),
            restarts_by_job=dict(pipeline.restarts) or "none",
        )
        assert_exact(state, pipeline)
        # The outage was met: a batch retried, or a job failed and was restarted.
        assert retries + sum(pipeline.restarts.values()) > 0, pipeline.tails()
        assert codes == {"enrichment": 0, "aggregation": 0}, pipeline.tails()
    finally:
        if pipeline is not None:
            pipeline.close()
        server.stop("immediate")
        server.delete_files()
