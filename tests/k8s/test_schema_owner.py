"""The owner of the chart's database is no superuser: the postgres image's superuser is
`postgres`, and the chart's init script, run once at PostgreSQL's first start, makes the owner
a role with CREATEROLE that owns the database.

Run for real here: the rendered script on a fresh local PostgreSQL (as the image runs it, as
the superuser over the Unix socket), then the rendered migrate Job as that owner, which must
apply the schema and create the writer and reader roles without any superuser right.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg2
import pytest

from core.postgres import LIBPQ_TLS_ENV
from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer
from scripts.embedded.prerequisites import find_postgres_bin

from .render import REPO_ROOT, HelmError, containers, env_of, find, pod_spec, render_chart, resolved_env

pytestmark = pytest.mark.integration

# Names of their own, beside the local server's roles.
VALUES = {
    "postgresql": {
        "auth": {
            "username": "chart_owner",
            "writerUsername": "chart_writer",
            "readerUsername": "chart_reader",
            "database": "chart_tickets",
        },
        "tls": {"enabled": False},  # the local server has no TLS (test_postgresql_tls.py has)
    }
}
PASSWORDS = {
    "password": "owner-secret",
    "writer-password": "writer-secret",
    "reader-password": "reader-secret",
    "admin-password": "superuser-secret",
}


@pytest.fixture
def server(tmp_path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "postgres", port=free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.delete_files()


def test_should_run_the_postgresql_image_with_the_postgres_superuser_and_the_owner_apart() -> None:
    """POSTGRES_USER is postgres with its own password key (optional: a database made by an
    older chart has none); the owner and its password reach only the init script."""
    statefulset = find(render_chart(), "StatefulSet", "postgresql")
    (container,) = pod_spec(statefulset)["containers"]
    env = env_of(container)
    assert env["POSTGRES_USER"] == "postgres"
    assert env["POSTGRES_PASSWORD"]["secretKeyRef"] == {
        "name": "postgresql",
        "key": "admin-password",
        "optional": True,
    }
    assert env["PIPELINE_OWNER"] == "tickets"
    assert env["PIPELINE_OWNER_PASSWORD"]["secretKeyRef"]["key"] == "password"
    with pytest.raises(HelmError, match="adminPasswordKey must differ"):
        render_chart({"postgresql": {"auth": {"secretKeys": {"adminPasswordKey": "password"}}}})
    with pytest.raises(HelmError, match=r"postgresql\.auth\.username"):
        render_chart({"postgresql": {"auth": {"username": "postgres"}}})


def test_should_make_an_owner_without_superuser_that_migrate_can_use(server, tmp_path) -> None:
    """The rendered init script makes chart_owner a role with CREATEROLE, no SUPERUSER, that owns
    the database; the rendered migrate Job, connected as it, applies the schema and creates
    the writer and the reader, who log in with their passwords and may not create a table."""
    objects = render_chart(VALUES)
    statefulset = find(objects, "StatefulSet", "postgresql")
    (container,) = pod_spec(statefulset)["containers"]
    script = tmp_path / "10-pipeline-owner.sh"
    script.write_text(find(objects, "ConfigMap", "postgresql-initdb")["data"]["10-pipeline-owner.sh"])
    # What the image does before its init scripts: POSTGRES_DB exists, owned by the superuser.
    admin = server.admin_connection()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE chart_tickets")
    admin.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    bin_dir = find_postgres_bin()
    env.update(
        resolved_env(container, PASSWORDS),
        # The image's superuser over its socket; here, the local server's over TCP.
        POSTGRES_USER="postgres", PGHOST="127.0.0.1", PGPORT=str(server.port),
        PGPASSWORD=server.admin_password, PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )  # fmt: skip
    run = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr

    migrate = next(
        c for c in containers(find(objects, "Job", "postgresql-migrate")) if c["name"] == "migrate"
    )
    migrate_env = resolved_env(migrate, PASSWORDS)
    for name in LIBPQ_TLS_ENV:
        migrate_env.pop(name, None)
    migrate_env["DATABASE_URL"] = migrate_env["DATABASE_URL"].replace(
        "postgresql.default.svc.cluster.local:5432", f"127.0.0.1:{server.port}"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_"))}
    run = subprocess.run(
        [sys.executable, "-m", "core.migrate"], env={**base, "PYTHONPATH": str(REPO_ROOT), **migrate_env},
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr

    url = migrate_env["DATABASE_URL"]
    with psycopg2.connect(url, password=PASSWORDS["password"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False, True)
        cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert cur.fetchone() == ("chart_owner",)
        cur.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchall() == [("chart_owner",)]
    conn.close()
    for role, key in (("chart_writer", "writer-password"), ("chart_reader", "reader-password")):
        role_url = url.replace("//chart_owner@", f"//{role}@", 1)
        with psycopg2.connect(role_url, password=PASSWORDS[key]) as conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False), role
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("CREATE TABLE intruder (id int)")
        conn.close()


def test_should_keep_the_init_script_out_of_an_external_database() -> None:
    """With externalPostgresql no init script is rendered: the owner is yours to make."""
    objects = render_chart(
        {"externalPostgresql": {"host": "db.internal"}, "postgresql": {"auth": {"existingSecret": "db"}}}
    )
    assert not [o for o in objects if o["metadata"]["name"] == "postgresql-initdb"]
