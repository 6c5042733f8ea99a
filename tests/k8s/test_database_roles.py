"""The Spark jobs reach PostgreSQL as the least-privileged writer role, the dashboard as the
read-only reader role, neither as the owner.

Only PostgreSQL itself and the migrate Job get the owner's password; the migrate Job also gets
the writer's and the reader's roles and passwords, to create the roles and grant them
core.migrations' WRITER_PRIVILEGES and READER_PRIVILEGES. Checked with the default values and
with an existing Secret of custom keys and other roles (conftest.CUSTOM_VALUES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.migrate import MigrateSettings
from core.settings import load
from dashboard.settings import PASSWORD_ENV

from .conftest import CUSTOM_VALUES
from .render import HelmError, all_containers, containers, env_of, find, of_kind, render_chart, spark_pods


@dataclass(frozen=True)
class Auth:
    """What the chart must use for a set of values."""

    owner: str
    writer: str
    reader: str
    secret: str
    owner_key: str
    writer_key: str
    reader_key: str
    admin_key: str

    def ref(self, key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": self.secret, "key": key}}


CASES = {
    "default values": (
        None,
        Auth(
            "tickets",
            "tickets_writer",
            "tickets_reader",
            "postgresql",
            "password",
            "writer-password",
            "reader-password",
            "admin-password",
        ),
    ),
    "custom values": (
        CUSTOM_VALUES,
        Auth(
            "tickets",
            "pipeline_writer",
            "pipeline_reader",
            "pipeline-db",
            "db-password",
            "db-writer-password",
            "db-reader-password",
            "db-admin-password",
        ),
    ),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[list[dict], Auth]:
    """The chart rendered with a set of values, and the roles and Secret keys it must use."""
    values, auth = CASES[request.param]
    return render_chart(values), auth


def _secret_refs(obj: dict) -> list[dict[str, str]]:
    """Every secretKeyRef in the env of an object's containers and Spark pods, but the dashboard
    page's password (DASHBOARD_PASSWORD: no database role's, tests/k8s/test_wiring.py checks it)."""
    return [
        value["secretKeyRef"]
        for holder in [*all_containers(obj), *spark_pods(obj)]
        for name, value in env_of(holder).items()
        if isinstance(value, dict) and name != PASSWORD_ENV
    ]


def test_should_connect_the_spark_jobs_as_the_writer_role_never_as_the_owner(
    case: tuple[list[dict], Auth],
) -> None:
    """Should connect the Spark jobs as the writer role, never as the owner: each driver's
    DATABASE_URL names the writer and its PGPASSWORD is the writer's key, as the executors';
    its wait-for-schema logs in as the writer too; nothing in a SparkApplication reads the
    owner's password."""
    objects, auth = case
    apps = of_kind(objects, "SparkApplication")
    assert {app["metadata"]["name"] for app in apps} == {"enrichment", "aggregation"}
    for app in apps:
        name = app["metadata"]["name"]
        driver = env_of(app["spec"]["driver"])
        assert urlsplit(driver["DATABASE_URL"]).username == auth.writer != auth.owner, name
        assert driver["PGPASSWORD"] == auth.ref(auth.writer_key), name
        (wait,) = app["spec"]["driver"]["initContainers"]
        assert env_of(wait)["PGUSER"] == auth.writer, name
        assert env_of(wait)["PGPASSWORD"] == auth.ref(auth.writer_key), name
        assert env_of(app["spec"]["executor"])["PGPASSWORD"] == auth.ref(auth.writer_key), name
        assert _secret_refs(app) == [{"name": auth.secret, "key": auth.writer_key}] * 3, name


def test_should_connect_the_dashboard_as_the_reader_role(case: tuple[list[dict], Auth]) -> None:
    """Should connect the dashboard as the read-only reader role, with the reader's key only."""
    objects, auth = case
    dashboard = find(objects, "Deployment", "dashboard")
    env = env_of(containers(dashboard)[0])
    assert urlsplit(env["DATABASE_URL"]).username == auth.reader
    assert env["PGPASSWORD"] == auth.ref(auth.reader_key)
    assert _secret_refs(dashboard) == [{"name": auth.secret, "key": auth.reader_key}]


def test_should_give_the_migrate_job_the_writers_and_readers_roles_and_passwords(
    case: tuple[list[dict], Auth],
) -> None:
    """Should give the migrate Job the writer's and the reader's roles and passwords: it connects
    as the owner (DATABASE_URL, PGPASSWORD) and gets DATABASE_WRITER_ROLE/_PASSWORD and
    DATABASE_READER_ROLE/_PASSWORD from their keys, which core.migrate reads to create the roles
    and grant them."""
    objects, auth = case
    migrate = env_of(containers(find(objects, "Job", "postgresql-migrate"))[0])
    assert urlsplit(migrate["DATABASE_URL"]).username == auth.owner
    assert migrate["PGPASSWORD"] == auth.ref(auth.owner_key)
    assert migrate["DATABASE_WRITER_ROLE"] == auth.writer
    assert migrate["DATABASE_WRITER_PASSWORD"] == auth.ref(auth.writer_key)
    assert migrate["DATABASE_READER_ROLE"] == auth.reader
    assert migrate["DATABASE_READER_PASSWORD"] == auth.ref(auth.reader_key)
    plain = {k: v for k, v in migrate.items() if isinstance(v, str)}
    settings = load(MigrateSettings, [], environ=plain)
    assert (settings.writer_role, settings.reader_role) == (auth.writer, auth.reader)


def test_should_hand_the_owners_password_only_to_postgresql_and_the_migrate_job(
    case: tuple[list[dict], Auth],
) -> None:
    """Should read the owner's password only in the PostgreSQL server (its first start makes the
    owner) and the migrate Job, the superuser's in the server alone; the drivers, their waits
    and the helm test get the writer's, the dashboard the reader's."""
    objects, auth = case
    readers = {
        f"{obj['kind']}/{obj['metadata']['name']}": {ref["key"] for ref in _secret_refs(obj)}
        for obj in objects
        if _secret_refs(obj)
    }
    assert readers == {
        "StatefulSet/postgresql": {auth.owner_key, auth.admin_key},
        "Job/postgresql-migrate": {auth.owner_key, auth.writer_key, auth.reader_key},
        "SparkApplication/enrichment": {auth.writer_key},
        "SparkApplication/aggregation": {auth.writer_key},
        "Pod/test-tickets-reach-postgresql": {auth.writer_key},
        "Deployment/dashboard": {auth.reader_key},
    }


def test_should_wait_for_the_writers_right_to_insert_before_starting_a_driver(
    default_objects: list[dict],
) -> None:
    """Should hold each driver until the writer role may INSERT into every table: the wait
    asks has_table_privilege as the writer (NULL, hence false, while a table is missing)."""
    for app in of_kind(default_objects, "SparkApplication"):
        (wait,) = app["spec"]["driver"]["initContainers"]
        script = wait["command"][-1]
        assert "has_table_privilege(to_regclass('$table'), 'INSERT')" in script
        assert "for table in $TABLES" in script


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"writerUsername": "tickets"}, "writerUsername must differ from postgresql.auth.username"),
        (
            {"secretKeys": {"userPasswordKey": "password", "writerPasswordKey": "password"}},
            "writerPasswordKey must differ from userPasswordKey",
        ),
        (
            {
                "existingSecret": "pipeline-db",
                "secretKeys": {"userPasswordKey": "same", "writerPasswordKey": "same"},
            },
            "writerPasswordKey must differ from userPasswordKey",
        ),
        ({"readerUsername": "tickets"}, "readerUsername must differ from postgresql.auth.username"),
        (
            {"readerUsername": "tickets_writer"},
            "readerUsername must differ from postgresql.auth.writerUsername",
        ),
        (
            {
                "secretKeys": {
                    "userPasswordKey": "password",
                    "writerPasswordKey": "w",
                    "readerPasswordKey": "w",
                }
            },
            "readerPasswordKey must differ from userPasswordKey and writerPasswordKey",
        ),
        (
            {"secretKeys": {"userPasswordKey": "p", "writerPasswordKey": "w", "readerPasswordKey": "p"}},
            "readerPasswordKey must differ from userPasswordKey and writerPasswordKey",
        ),
    ],
    ids=[
        "writer is the owner",
        "one key for both passwords",
        "one key in an existing Secret",
        "reader is the owner",
        "reader is the writer",
        "reader shares the writer's key",
        "reader shares the owner's key",
    ],
)
def test_should_refuse_roles_that_share_a_role_or_key(auth: dict, message: str) -> None:
    """Should fail the render when the writer or the reader is the owner, or the reader is the
    writer (migrate would reset one's password and grants to the other's), or when two passwords
    would live under one key."""
    with pytest.raises(HelmError) as failure:
        render_chart({"postgresql": {"auth": auth}})
    assert message in failure.value.stderr
