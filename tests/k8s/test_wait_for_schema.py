"""The drivers' rendered wait-for-schema init container, run with sh and psql on the local server.

It logs in as the writer role, as the driver will: it must keep waiting while the tables are
missing and while the writer has no right on them, and let the driver start once the migrate
Job's migrations and grants are in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.migrations import apply_migrations, grant_writer
from core.postgres import connect
from scripts.embedded import process_group
from scripts.embedded.prerequisites import find_postgres_bin

from .render import find, render_chart, resolved_env, secret_passwords

pytestmark = pytest.mark.integration

# Longer than one round of the loop (a psql call and `sleep 3`).
STILL_WAITING_AFTER_SECONDS = 7


@pytest.fixture
def empty_database(postgres_server) -> Iterator[str]:
    """A fresh database owned by the owner role, without any table; dropped after the test."""
    name = f"wait_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


def _wait_container(postgres_server, database: str) -> tuple[list[str], dict[str, str]]:
    """The rendered wait-for-schema of enrichment: its command, and its env mapped to the local
    server (host, port, database) with its secret reference resolved by key. Rendered without
    TLS, as the session's server has none (tests/k8s/test_postgresql_tls.py runs psql over TLS)."""
    app = find(render_chart({"postgresql": {"tls": {"enabled": False}}}), "SparkApplication", "enrichment")
    (wait,) = app["spec"]["driver"]["initContainers"]
    passwords = secret_passwords(
        postgres_server.password, postgres_server.writer_password, postgres_server.reader_password
    )
    env = resolved_env(wait, passwords)
    assert env["PGUSER"] == postgres_server.writer
    env.update(PGHOST="127.0.0.1", PGPORT=str(postgres_server.port), PGDATABASE=database)
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no PGPASSFILE
    base["PATH"] = f"{find_postgres_bin()}{os.pathsep}{base.get('PATH', '')}"  # psql
    return wait["command"], {**base, **env}


def _run(command: list[str], env: dict[str, str], seconds: float, log: Path) -> int | None:
    """Run the container's command for up to ``seconds``; its exit code, or None if still running."""
    with log.open("w") as out:
        process = process_group.spawn(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if process.poll() is None:
            process_group.stop(process, 10, sig=signal.SIGTERM, whole_group=True)
            return None
        return process.returncode


def test_should_hold_the_driver_until_the_writer_may_insert_into_every_table(
    postgres_server, empty_database, tmp_path
) -> None:
    """Should keep waiting without tables, and with tables the writer has no right on, then
    exit 0 once the migrate Job's grants are in."""
    database = empty_database.rsplit("/", 1)[1]
    command, env = _wait_container(postgres_server, database)
    log = tmp_path / "wait.log"

    assert _run(command, env, STILL_WAITING_AFTER_SECONDS, log) is None, log.read_text()
    assert f"waiting until {postgres_server.writer} may insert into tickets" in log.read_text()

    conn = connect(empty_database, application_name="tests")
    try:
        apply_migrations(conn)
        assert _run(command, env, STILL_WAITING_AFTER_SECONDS, log) is None, log.read_text()
        assert "may insert into tickets " in log.read_text()

        assert grant_writer(conn, postgres_server.writer, password=None)
    finally:
        conn.close()
    assert _run(command, env, 30, log) == 0, log.read_text()
