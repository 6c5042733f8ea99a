"""The Spark jobs refuse to start on a wrong setting, naming it, before Spark starts."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pyarrow as pa
import pytest
from confluent_kafka import Producer
from deltalake import write_deltalake

from core.kafka import client_config
from core.settings import REPO_ROOT
from producer.generator import TicketGenerator, encode
from scripts.embedded.ports import free_port

pytestmark = pytest.mark.integration


def run_job(module: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module],
        env=dict(os.environ, **env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("module", ["jobs.enrichment", "jobs.aggregation"])
def test_an_unreachable_broker_is_named(module, postgres_server):
    """KAFKA_BOOTSTRAP_SERVERS pointing nowhere fails with exit 2 and names the setting."""
    run = run_job(
        module, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATABASE_URL": postgres_server.database_url}
    )
    assert run.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1" in run.stderr


def test_a_wrong_database_password_is_named(kafka_env, postgres_server):
    """A wrong PGPASSWORD fails with exit 2 and names DATABASE_URL, password hidden."""
    run = run_job(
        "jobs.enrichment",
        {
            **kafka_env,
            "DATABASE_URL": postgres_server.database_url,
            "PGPASSWORD": "not-the-password",
        },
    )
    assert run.returncode == 2
    assert "DATABASE_URL=postgresql://tickets@" in run.stderr
    assert "password authentication failed" in run.stderr


def test_a_database_without_the_schema_says_how_to_apply_it(kafka_env, postgres_server):
    """Tables missing: exit 2 with the migrate command to run."""
    url = postgres_server.create_database("no_schema")
    try:
        run = run_job(
            "jobs.aggregation",
            {**kafka_env, "DATABASE_URL": url},
        )
    finally:
        postgres_server.drop_database("no_schema")
    assert run.returncode == 2
    assert "python -m core.migrate" in run.stderr


def test_an_invalid_trigger_interval_is_named():
    """A negative trigger interval is refused at start."""
    run = run_job("jobs.enrichment", {"TRIGGER_INTERVAL_SECONDS": "-1"})
    assert run.returncode == 2
    assert "--trigger-interval-seconds / TRIGGER_INTERVAL_SECONDS" in run.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"DELTA_COMPACT_EVERY_BATCHES": "-1"},
            "--delta-compact-every-batches / DELTA_COMPACT_EVERY_BATCHES",
        ),
        (
            {"DELTA_VACUUM_RETENTION_HOURS": "-1"},
            "--delta-vacuum-retention-hours / DELTA_VACUUM_RETENTION_HOURS",
        ),
        ({"DELTA_TABLE_URI": "s3://bucket/tickets"}, "--delta-table-uri / DELTA_TABLE_URI"),
    ],
)
def test_a_wrong_delta_setting_is_named(env, named):
    """A negative compaction interval or vacuum retention, or an object store (not supported
    yet) as the Delta table, is refused at start."""
    run = run_job("jobs.enrichment", env)
    assert run.returncode == 2
    assert named in run.stderr


def test_a_delta_table_uri_that_holds_no_tickets_table_is_named(kafka_env, database_url, tmp_path):
    """DELTA_TABLE_URI naming a file, or a Delta table of another schema, stops the job at
    start (exit 2) with the setting named, before Spark starts: no checkpoint is made."""
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("a file")
    other = tmp_path / "other"
    write_deltalake(str(other), pa.table({"ticket_id": ["x"]}))
    checkpoint = tmp_path / "checkpoint"
    for uri, why in ((not_a_folder, "cannot create or open"), (other, "another schema")):
        run = run_job(
            "jobs.enrichment",
            {
                **kafka_env,
                "DATABASE_URL": database_url,
                "DELTA_TABLE_URI": str(uri),
                "CHECKPOINT_DIR": str(checkpoint),
            },
        )
        assert run.returncode == 2, run.stderr[-3000:]
        assert "invalid setting --delta-table-uri / DELTA_TABLE_URI" in run.stderr
        assert why in run.stderr
        assert "log4j" not in run.stderr
    assert not checkpoint.exists()


def test_a_failed_query_is_reported_once_and_exits_1(
    kafka_connection, kafka_env, topic, database_url, writer_url, tmp_path
):
    """A batch that fails for good (the jobs' role lost INSERT on tickets) stops the job
    with exit 1, and its error is logged once, not once per layer."""
    producer = Producer(client_config(kafka_connection))
    ticket = TicketGenerator(seed=5).ticket()
    producer.produce(topic, key=ticket["client_id"].encode(), value=encode(ticket))
    assert producer.flush(30) == 0
    owner = psycopg2.connect(database_url)
    owner.autocommit = True
    with owner.cursor() as cur:
        cur.execute("REVOKE INSERT ON tickets FROM tickets_writer")
    owner.close()
    run = run_job(
        "jobs.enrichment",
        {
            **kafka_env,
            "TICKETS_TOPIC": topic,
            "DATABASE_URL": writer_url,
            "CHECKPOINT_DIR": str(tmp_path / "checkpoint"),
            "METRICS_PORT": "-1",
            "SPARK_UI_PORT": str(free_port()),
        },
        timeout=180,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert output.count("permission denied for table tickets") == 1, output[-6000:]
