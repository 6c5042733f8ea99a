"""The dashboard says when its figures were read, and since when reads fail: with PostgreSQL
stopped, the page keeps the last figures and says so, with a generic message (why goes to the
log only: the error names the database's host and role); once it is back, it reads again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from core.migrations import apply_migrations, grant_reader
from core.settings import REPO_ROOT
from dashboard.app import UNAVAILABLE
from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer
from tests.dashboard.page import served_text
from tests.embedded_run import wait_until

pytestmark = pytest.mark.integration


def test_the_page_says_since_when_postgresql_cannot_be_read_and_the_log_says_why(
    kafka_env, topic, tmp_path: Path
):
    """PostgreSQL stopped under a running dashboard: the status line keeps the last figures'
    time and says reads fail since when, with UNAVAILABLE and no text of the exception (host,
    port, role); the log holds the detail; with PostgreSQL back, the page reads again."""
    server = PostgresServer(tmp_path / "postgres", port=free_port())
    dashboard = None
    try:
        server.start()
        with psycopg2.connect(server.database_url, password=server.password) as conn:
            apply_migrations(conn)
            grant_reader(conn, server.reader, password=None)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PGPASSFILE", "PGPASSWORD", "DATABASE_URL")}
        env.update(
            kafka_env,
            DATABASE_URL=server.reader_url,  # as `make run` and the chart connect it
            PGPASSWORD=server.reader_password,
            TICKETS_TOPIC=topic,
            DASHBOARD_PORT=str(port),
            DASHBOARD_REFRESH_SECONDS="0.5",
        )
        log = tmp_path / "dashboard.log"
        with log.open("w") as out:
            command = [sys.executable, "-m", "dashboard"]
            dashboard = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)
        url = f"http://127.0.0.1:{port}/"

        def status() -> str:
            assert dashboard.poll() is None, log.read_text()[-3000:]
            return served_text(url, "status") or ""

        wait_until("a first read", lambda: status().startswith("updated "), 60)
        assert served_text(url, "stored") == "0"

        server.stop("fast")
        failing = wait_until("the page saying reads fail", lambda: "failing" in status() and status(), 60)
        print(f"\nthe page said: {failing}")
        assert failing.startswith("figures of "), failing  # the last figures stay, with their time
        assert failing.endswith(f": {UNAVAILABLE}"), failing  # and where to learn why
        for detail in ("127.0.0.1", str(server.port), server.reader, "connect", "Error"):
            assert detail not in failing, (detail, failing)  # no exception text on the page
        assert "figures unavailable, keeping the last ones" in log.read_text()  # the log has it
        assert served_text(url, "stored") == "0"

        server.start()
        wait_until("reads again", lambda: status().startswith("updated "), 60)
    finally:
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(30)
        server.stop()
        server.delete_files()
