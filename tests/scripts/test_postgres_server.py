"""The embedded PostgreSQL server of `make run` (scripts/embedded/postgres_server.py)."""

from __future__ import annotations

import shutil
import stat
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


def test_the_password_files_are_private_and_the_roles_get_scram_verifiers(tmp_path: Path) -> None:
    """After a first start, the four password files and the pgpass file are 0600, written with
    write_private (mode set at creation); a pgpass file widened by hand is 0600 again after a
    restart. The roles are created from SCRAM verifiers made client-side: they log in with their
    passwords, and the server's log of every statement it received holds none of the passwords."""
    root = tmp_path / "postgres"
    server = PostgresServer(root, port=free_port(), settings=("log_statement=all",))
    secrets = ("password", "writer-password", "reader-password", "admin-password", "pgpass")
    try:
        server.start()
        assert {name: stat.S_IMODE((root / name).stat().st_mode) for name in secrets} == dict.fromkeys(
            secrets, 0o600
        )
        server.pgpass_file.chmod(0o644)
        server.stop()
        server.start()
        assert stat.S_IMODE(server.pgpass_file.stat().st_mode) == 0o600
        passwords = {server.name: server.password, server.writer: server.writer_password}
        passwords[server.reader] = server.reader_password
        for user, password in passwords.items():
            psycopg2.connect(server.url_for(server.name, user=user), password=password).close()
        received = (server.server_dir / "postgres.log").read_text(errors="replace")
        assert f'CREATE ROLE "{server.writer}" LOGIN PASSWORD \'SCRAM-SHA-256$4096:' in received
        assert not [user for user, password in passwords.items() if password in received]
    finally:
        server.stop()
        server.delete_files()


def test_a_password_file_planted_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    """The password files are created exclusively: a symlink left where one will be written
    (pointing at a file someone else could read) stops the start, and no password lands there."""
    root = tmp_path / "postgres"
    root.mkdir()
    stolen = tmp_path / "stolen"
    (root / "password").symlink_to(stolen)
    server = PostgresServer(root, port=free_port())
    try:
        with pytest.raises(FileExistsError):
            server.start()
        assert not stolen.exists()
    finally:
        server.stop()
        server.delete_files()
