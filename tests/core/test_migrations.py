"""The schema: applied by a command, idempotent, enforcing the contract."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest

from core.migrations import MIGRATIONS, READER_PRIVILEGES, apply_migrations
from core.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_migrate_command_is_idempotent(postgres_server):
    """`python -m core.migrate` applies every migration once; a second run applies none."""
    url = postgres_server.create_database("migrate_twice")
    env = dict(os.environ, DATABASE_URL=url, PGPASSWORD=postgres_server.password)
    runs = [
        subprocess.run(
            [sys.executable, "-m", "core.migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0]
    assert f"{len(MIGRATIONS)} migration(s) applied now" in runs[0].stderr
    assert "0 migration(s) applied now" in runs[1].stderr
    postgres_server.drop_database("migrate_twice")


def test_migrate_fails_fast_on_a_wrong_password(postgres_server):
    """A wrong password is a configuration error: exit 1 at once, naming DATABASE_URL."""
    env = dict(os.environ, DATABASE_URL=postgres_server.database_url, PGPASSWORD="wrong")
    run = subprocess.run(
        [sys.executable, "-m", "core.migrate", "--wait-seconds", "30"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert run.returncode == 1
    assert "DATABASE_URL=postgresql://tickets@" in run.stderr
    assert "password authentication failed" in run.stderr


def test_the_schema_refuses_a_type_outside_the_contract(database_url):
    """The CHECK constraints derived from the contract's enums hold in the database."""
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
        cur.execute(
            "INSERT INTO tickets (ticket_id, client_id, created_at, request, type, priority, team,"
            " kafka_topic, kafka_partition, kafka_offset, enriched_at)"
            " VALUES (gen_random_uuid(), 'CLI-000001', now(), 'x', 'bug', 'low', 'Customer Care',"
            " 't', 0, 0, now())"
        )
    conn.close()
    conn = psycopg2.connect(database_url)
    assert apply_migrations(conn) == []
    conn.close()


def test_the_jobs_role_may_write_tickets_but_not_delete_or_change_the_schema(database_url, writer_url):
    """tickets_writer can INSERT and SELECT, but DELETE, TRUNCATE, DROP, CREATE TABLE and
    UPDATE of a reject fail."""
    conn = psycopg2.connect(writer_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tickets (ticket_id, client_id, created_at, request, type, priority, team,"
            " kafka_topic, kafka_partition, kafka_offset, enriched_at)"
            " VALUES (gen_random_uuid(), 'CLI-000001', now(), 'x', 'question', 'low',"
            " 'Support Information', 't', 0, 0, now())"
        )
        cur.execute("SELECT count(*) FROM tickets")
        assert cur.fetchone() == (1,)
        for statement in (
            "DELETE FROM tickets",
            "TRUNCATE tickets_aggregation",
            "DROP TABLE tickets_rejected",
            "CREATE TABLE intruder (x int)",
            "UPDATE tickets_rejected SET reason = 'x'",
            "DELETE FROM tickets_aggregation_seen",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
    conn.close()


def test_the_dashboards_role_may_read_what_it_shows_and_nothing_else(database_url, reader_url):
    """tickets_reader can SELECT from tickets, tickets_rejected and tickets_aggregation, and
    nothing more: no write of any kind, no read of the jobs' bookkeeping table."""
    conn = psycopg2.connect(reader_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in READER_PRIVILEGES:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone() == (0,), table
        for statement in (
            "INSERT INTO tickets_rejected SELECT * FROM tickets_rejected",
            "UPDATE tickets_aggregation SET ticket_count = 0",
            "DELETE FROM tickets",
            "TRUNCATE tickets",
            "SELECT count(*) FROM tickets_aggregation_seen",
            "CREATE TABLE intruder (x int)",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
    conn.close()


def test_migrate_refuses_a_reader_role_that_is_the_writer_role():
    """DATABASE_READER_ROLE = DATABASE_WRITER_ROLE fails at start, naming both settings: migrate
    would give the jobs' role the reader's password."""
    env = dict(
        os.environ, DATABASE_READER_ROLE="tickets_writer", DATABASE_URL="postgresql://nobody@127.0.0.1:1/x"
    )
    run = subprocess.run(
        [sys.executable, "-m", "core.migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "DATABASE_READER_ROLE must differ from DATABASE_WRITER_ROLE" in run.stderr, run.stderr


@pytest.mark.parametrize("role_setting", ["DATABASE_WRITER_ROLE", "DATABASE_READER_ROLE"])
def test_migrate_refuses_a_jobs_or_dashboard_role_that_is_the_owner(postgres_server, role_setting):
    """A writer or reader role equal to the owner that migrate connects as fails at start
    (exit 2, naming the setting) and changes nothing: migrate would otherwise set the owner's
    password to the writer's or reader's, and grant the owner a subset of what it owns."""
    url = postgres_server.create_database(f"owner_{role_setting.lower()}")
    password_setting = role_setting.replace("_ROLE", "_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
    env.update(DATABASE_URL=url, PGPASSWORD=postgres_server.password)
    env.update({role_setting: "tickets", password_setting: "x"})
    try:
        run = subprocess.run(
            [sys.executable, "-m", "core.migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert run.returncode == 2, run.stderr
        assert f"{role_setting} must differ from the owner" in run.stderr, run.stderr
        assert "tickets" in run.stderr
        # The owner's password is still the one it had.
        psycopg2.connect(url, password=postgres_server.password).close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(url, password="x")
    finally:
        postgres_server.drop_database(f"owner_{role_setting.lower()}")


def test_migrate_creates_the_roles_when_given_their_passwords(postgres_server):
    """With DATABASE_WRITER_PASSWORD and DATABASE_READER_PASSWORD, core.migrate creates both
    roles, which can then log in: the writer writes, the reader reads."""
    url = postgres_server.create_database("writer_created")
    admin = postgres_server.admin_connection()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("ALTER ROLE tickets CREATEROLE")  # a cluster owner, like the chart's POSTGRES_USER
    env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
    env.update(
        DATABASE_URL=url,
        PGPASSWORD=postgres_server.password,
        DATABASE_WRITER_ROLE="chart_writer",
        DATABASE_WRITER_PASSWORD="s3cret-writer",
        DATABASE_READER_ROLE="chart_reader",
        DATABASE_READER_PASSWORD="s3cret-reader",
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "core.migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        writer = psycopg2.connect(url.replace("//tickets@", "//chart_writer@"), password="s3cret-writer")
        with writer.cursor() as cur:
            cur.execute("SELECT count(*) FROM tickets_aggregation")
            assert cur.fetchone() == (0,)
        writer.close()
        reader = psycopg2.connect(url.replace("//tickets@", "//chart_reader@"), password="s3cret-reader")
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM tickets")
            assert cur.fetchone() == (0,)
        reader.close()
    finally:
        with admin.cursor() as cur:
            cur.execute("ALTER ROLE tickets NOCREATEROLE")
        postgres_server.drop_database("writer_created")
        with admin.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS chart_writer")
            cur.execute("DROP ROLE IF EXISTS chart_reader")
        admin.close()


def test_migrate_sends_the_roles_scram_verifiers_never_their_clear_passwords(postgres_server):
    """Creating the roles, then running again (ALTER ROLE), core.migrate sends a SCRAM-SHA-256
    verifier made client-side: the roles log in with their passwords, and the server's own log of
    every statement it received (log_statement=all) shows the verifiers and neither password."""
    database = "scram_roles"
    url = postgres_server.create_database(database)
    passwords = {"scram_writer": "clear-Writer-7f3a9c", "scram_reader": "clear-Reader-2b8e41"}
    log = postgres_server.server_dir / "postgres.log"
    admin = postgres_server.admin_connection()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("ALTER ROLE tickets CREATEROLE")
        cur.execute(f"ALTER ROLE tickets IN DATABASE {database} SET log_statement = 'all'")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
    env.update(
        DATABASE_URL=url,
        PGPASSWORD=postgres_server.password,
        DATABASE_WRITER_ROLE="scram_writer",
        DATABASE_WRITER_PASSWORD=passwords["scram_writer"],
        DATABASE_READER_ROLE="scram_reader",
        DATABASE_READER_PASSWORD=passwords["scram_reader"],
    )
    logged_from = log.stat().st_size
    try:
        for _ in ("CREATE ROLE", "ALTER ROLE"):
            run = subprocess.run(
                [sys.executable, "-m", "core.migrate"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
            )
            assert run.returncode == 0, run.stderr
        for role, password in passwords.items():
            psycopg2.connect(url.replace("//tickets@", f"//{role}@"), password=password).close()
        with admin.cursor() as cur:
            cur.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE 'scram\\_%'")
            stored = dict(cur.fetchall())
        assert sorted(stored) == sorted(passwords)
        assert all(verifier.startswith("SCRAM-SHA-256$4096:") for verifier in stored.values())
        with log.open(errors="replace") as file:
            file.seek(logged_from)
            received = file.read()
        for role, password in passwords.items():
            for verb in ("CREATE", "ALTER"):
                assert f"""{verb} ROLE "{role}" LOGIN PASSWORD 'SCRAM-SHA-256$4096:""" in received
            assert password not in received
    finally:
        with admin.cursor() as cur:
            cur.execute("ALTER ROLE tickets NOCREATEROLE")
            cur.execute(f"ALTER ROLE tickets IN DATABASE {database} RESET log_statement")
        postgres_server.drop_database(database)
        with admin.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS scram_writer")
            cur.execute("DROP ROLE IF EXISTS scram_reader")
        admin.close()
