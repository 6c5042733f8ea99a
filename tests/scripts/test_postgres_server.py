"""The embedded PostgreSQL server of `make run` (scripts/embedded/postgres_server.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg2
import pytest

from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer

pytestmark = pytest.mark.integration


def test_a_deleted_folder_starts_a_new_database_even_where_the_server_files_were_relocated(
    tmp_path: Path,
) -> None:
    """Deleting `.local/run/postgres` by hand (passwords and all) and starting again gives a new
    database with new passwords. Under root, with a folder the `postgres` user cannot enter
    (pytest's 0700 temporary folders), the server's files live elsewhere and outlive the folder:
    the old data, which no one can log into any more, must not be reused."""
    root = tmp_path / "postgres"
    first = PostgresServer(root, port=free_port())
    first.start()
    relocated = first.server_dir
    first.stop()
    shutil.rmtree(root)
    second = PostgresServer(root, port=first.port)
    try:
        second.start()
        assert second.server_dir == relocated  # the same place, fresh data
        with psycopg2.connect(second.database_url, password=second.password) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (second.name,)
    finally:
        second.stop()
        second.delete_files()
