"""`make run`'s program: the whole pipeline embedded, from start to Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from core.settings import REPO_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def count_rows(url: str, password: str) -> tuple[int, int]:
    try:
        conn = psycopg2.connect(url, password=password, connect_timeout=3)
    except psycopg2.OperationalError:
        return 0, 0
    with conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM tickets),"
            " (SELECT coalesce(sum(ticket_count), 0) FROM tickets_aggregation)"
        )
        tickets, counted = cur.fetchone()
    conn.close()
    return tickets, counted


def test_the_embedded_pipeline_fills_both_tables_and_stops_cleanly():
    """Broker, PostgreSQL, producer and both jobs start; rows arrive; SIGINT stops all with exit 0."""
    data = Path(tempfile.mkdtemp(prefix="ticket-pipeline-run-"))
    data.chmod(0o755)
    kafka_port, postgres_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGPASSWORD")}
    env.update(PRODUCER_RATE="100", SPARK_DRIVER_MEMORY="512m", PYTHONUNBUFFERED="1")
    log = open(data / "run.out", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scripts.run_embedded",
            "--kafka-port",
            str(kafka_port),
            "--postgres-port",
            str(postgres_port),
            "--data-dir",
            str(data),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"postgresql://tickets@127.0.0.1:{postgres_port}/tickets"
    try:
        deadline = time.monotonic() + 240
        tickets = counted = 0
        while time.monotonic() < deadline and (tickets < 100 or counted < 100):
            assert process.poll() is None, (data / "run.out").read_text()[-3000:]
            time.sleep(3)
            if (data / "postgres" / "password").exists():
                tickets, counted = count_rows(url, (data / "postgres" / "password").read_text())
        assert tickets >= 100 and counted >= 100, (data / "run.out").read_text()[-3000:]
        process.send_signal(signal.SIGINT)
        assert process.wait(120) == 0
        output = (data / "run.out").read_text()
        assert "ticket-pipeline is running" in output
        assert "→ Support" in output or "→ Customer Care" in output
        assert "stopped; data and checkpoints kept" in output
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
