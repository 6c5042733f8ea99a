"""PostgreSQL over TLS: the chart's server serves the certificate it generates and refuses TCP
without TLS; every client verifies that certificate and its name (sslmode verify-full, the CA
mounted) and accepts only SCRAM (require_auth); `externalPostgresql` points every client at
your own server with the same settings.

The wiring is checked on the rendered objects; the generated certificate and pg_hba.conf are
also served by a real PostgreSQL here, with the server arguments that the StatefulSet passes,
and reached with the environment that the clients get.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from core.postgres import LIBPQ_TLS_ENV
from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer
from scripts.embedded.prerequisites import find_postgres_bin

from .render import HelmError, all_containers, env_of, find, of_kind, pod_spec, render_chart, spark_pods

CA_DIR = "/etc/postgresql-ca"


EXTERNAL_VALUES: dict[str, Any] = {
    "externalPostgresql": {"host": "tickets.abc123.eu-west-3.rds.amazonaws.com", "caConfigMap": "rds-ca"},
    "postgresql": {"auth": {"existingSecret": "rds-passwords"}},
}
PLAIN_VALUES: dict[str, Any] = {"postgresql": {"tls": {"enabled": False}}}


def postgresql_clients(objects: list[dict[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any], dict]]:
    """Every container or Spark pod block that talks to PostgreSQL with a password, with the
    volumes of its pod: the migrate Job, the drivers and their wait-for-schema, the executors,
    the dashboard and the helm test."""
    for obj in objects:
        if obj["kind"] == "SparkApplication":
            volumes = {v["name"]: v for v in obj["spec"].get("volumes", [])}
            blocks = [*spark_pods(obj), *all_containers(obj)]
        else:
            volumes = {v["name"]: v for v in (pod_spec(obj) or {}).get("volumes", [])}
            blocks = all_containers(obj)
        for block in blocks:
            if "PGPASSWORD" in env_of(block):
                yield f"{obj['kind']}/{obj['metadata']['name']}/{block.get('name', '?')}", block, volumes


def tls_env(block: Mapping[str, Any]) -> dict[str, Any]:
    env = env_of(block)
    return {name: env.get(name) for name in LIBPQ_TLS_ENV}


def test_should_make_every_postgresql_client_verify_the_servers_certificate_and_name_by_default() -> None:
    """With the default values every client that sends a password has sslmode verify-full, the
    generated CA mounted where PGSSLROOTCERT says (from the ConfigMap, never the server's key)
    and require_auth scram-sha-256."""
    objects = render_chart()
    clients = list(postgresql_clients(objects))
    assert len(clients) >= 6, [where for where, _, _ in clients]
    for where, block, volumes in clients:
        assert tls_env(block) == {
            "PGSSLMODE": "verify-full",
            "PGSSLROOTCERT": f"{CA_DIR}/ca.crt",
            "PGREQUIREAUTH": "scram-sha-256",
        }, where
        mount = next(m for m in block.get("volumeMounts", []) if m["mountPath"] == CA_DIR)
        assert volumes[mount["name"]]["configMap"]["name"] == "postgresql-ca", where
    ca = find(objects, "ConfigMap", "postgresql-ca")
    assert ca["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in str(ca)


def test_should_mount_the_servers_key_in_the_postgresql_pod_only() -> None:
    """The Secret with the server's key is a volume of the PostgreSQL StatefulSet alone."""
    objects = render_chart()
    users = [
        obj["metadata"]["name"]
        for obj in objects
        for volume in [
            *(pod_spec(obj) or {}).get("volumes", []),
            *(obj["spec"].get("volumes", []) if obj["kind"] == "SparkApplication" else []),
        ]
        if volume.get("secret", {}).get("secretName") == "postgresql-tls"
    ]
    assert users == ["postgresql"]


def test_should_refuse_a_server_certificate_without_the_ca_that_signed_it() -> None:
    """An existing Secret for the server's certificate needs the ConfigMap of its CA."""
    with pytest.raises(HelmError, match=r"postgresql\.tls\.caConfigMap is required"):
        render_chart({"postgresql": {"tls": {"existingSecret": "pg-cert"}}})
    objects = render_chart({"postgresql": {"tls": {"existingSecret": "pg-cert", "caConfigMap": "pg-ca"}}})
    assert not [o for o in of_kind(objects, "Secret") if o["metadata"]["name"] == "postgresql-tls"]
    statefulset = find(objects, "StatefulSet", "postgresql")
    volumes = {v["name"]: v for v in pod_spec(statefulset)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "pg-cert"
    for where, _, volumes in postgresql_clients(objects):
        assert volumes["postgresql-ca"]["configMap"]["name"] == "pg-ca", where


def test_should_point_every_client_at_an_external_postgresql_with_its_ca() -> None:
    """With externalPostgresql.host, no PostgreSQL object is rendered and every client connects
    to that host with verify-full and the user's CA ConfigMap; without an existing Secret of
    passwords the chart refuses to render."""
    objects = render_chart(EXTERNAL_VALUES)
    kinds = {"StatefulSet", "Service", "Secret", "ConfigMap"}
    assert not [o for o in objects if o["kind"] in kinds and o["metadata"]["name"].startswith("postgresql")]
    for where, block, volumes in postgresql_clients(objects):
        env = env_of(block)
        # The executors take the URL from their driver, with the sink's options.
        if "DATABASE_URL" in env or "PGHOST" in env:
            host = urlsplit(env["DATABASE_URL"]).hostname if "DATABASE_URL" in env else env["PGHOST"]
            assert host == EXTERNAL_VALUES["externalPostgresql"]["host"], where
        assert tls_env(block)["PGSSLMODE"] == "verify-full", where
        assert volumes["postgresql-ca"]["configMap"]["name"] == "rds-ca", where
    system_cas = render_chart({**EXTERNAL_VALUES, "externalPostgresql": {"host": "db.internal"}})
    assert {tls_env(block)["PGSSLROOTCERT"] for _, block, _ in postgresql_clients(system_cas)} == {"system"}
    with pytest.raises(HelmError, match=r"postgresql\.auth\.existingSecret is required"):
        render_chart({"externalPostgresql": {"host": "db.internal"}})


def test_should_use_plain_tcp_only_when_tls_is_turned_off() -> None:
    """postgresql.tls.enabled=false: no TLS objects or server arguments, clients with sslmode
    disable and still require_auth scram-sha-256."""
    objects = render_chart(PLAIN_VALUES)
    names = {o["metadata"]["name"] for o in objects}
    assert not names & {"postgresql-tls", "postgresql-ca", "postgresql-hba"}
    assert "args" not in pod_spec(find(objects, "StatefulSet", "postgresql"))["containers"][0]
    for where, block, _ in postgresql_clients(objects):
        expected = {"PGSSLMODE": "disable", "PGSSLROOTCERT": None, "PGREQUIREAUTH": "scram-sha-256"}
        assert tls_env(block) == expected, where


class RenderedServer:
    """The chart's PostgreSQL TLS material and arguments, written where a local server reads them."""

    def __init__(self, objects: list[dict[str, Any]], folder: Path) -> None:
        folder.mkdir(parents=True)
        secret = find(objects, "Secret", "postgresql-tls")["data"]
        files = {
            "tls.crt": base64.b64decode(secret["tls.crt"]),
            "tls.key": base64.b64decode(secret["tls.key"]),
            "pg_hba.conf": find(objects, "ConfigMap", "postgresql-hba")["data"]["pg_hba.conf"].encode(),
        }
        for name, content in files.items():
            (folder / name).write_bytes(content)
            os.chmod(folder / name, 0o600)
            if os.geteuid() == 0:
                shutil.chown(folder / name, "postgres", "postgres")
        self.ca_file = folder / "ca.crt"
        self.ca_file.write_text(find(objects, "ConfigMap", "postgresql-ca")["data"]["ca.crt"])
        container = pod_spec(find(objects, "StatefulSet", "postgresql"))["containers"][0]
        arguments = container["args"]
        assert arguments[::2] == ["-c"] * (len(arguments) // 2), arguments
        mounts = {"/etc/postgresql/tls/": f"{folder}/", "/etc/postgresql/hba/": f"{folder}/"}
        self.settings = tuple(self._relocate(setting, mounts) for setting in arguments[1::2])
        client = next(block for _, block, _ in postgresql_clients(objects) if "DATABASE_URL" in env_of(block))
        self.host = urlsplit(env_of(client)["DATABASE_URL"]).hostname
        self.client_env = {**tls_env(client), "PGSSLROOTCERT": str(self.ca_file)}

    @staticmethod
    def _relocate(setting: str, mounts: Mapping[str, str]) -> str:
        for mounted, local in mounts.items():
            setting = setting.replace(mounted, local)
        return setting


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[tuple[PostgresServer, RenderedServer]]:
    """A real PostgreSQL started with the default chart's TLS arguments, Secret and pg_hba.conf."""
    server = PostgresServer(tmp_path / "postgres", port=free_port())
    # Where the server's user may read them (tmp_path may be closed to it).
    rendered = RenderedServer(render_chart(), server.server_dir / "tls")
    server.settings = rendered.settings
    for name in LIBPQ_TLS_ENV:
        monkeypatch.delenv(name, raising=False)
    try:
        server.start()
        yield server, rendered
    finally:
        server.stop()
        server.delete_files()


def connect(server: PostgresServer, host: str, **options: str):
    """Connect as the application role to `host` (its name, checked against the certificate),
    reached at the local server's address."""
    return psycopg2.connect(
        host=host, hostaddr="127.0.0.1", port=server.port, user=server.name, dbname=server.name,
        password=server.password, connect_timeout=10, **options,
    )  # fmt: skip


def test_should_serve_the_generated_certificate_to_a_client_with_the_charts_settings(
    tls_server, monkeypatch, tmp_path
) -> None:
    """A client with the clients' rendered libpq environment (the CA file at a local path)
    connects to the Service's name over TLS; the same client refuses the certificate for
    another name, and a client trusting another release's CA refuses it too."""
    server, rendered = tls_server
    for name, value in rendered.client_env.items():
        monkeypatch.setenv(name, value)
    with connect(server, rendered.host) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ssl, version = cur.fetchone()
    conn.close()
    assert ssl is True and version.startswith("TLS"), version
    with pytest.raises(psycopg2.OperationalError, match="does not match host name"):
        connect(server, "postgresql.elsewhere.svc.cluster.local")
    other = RenderedServer(render_chart({"commonLabels": {"render": "another"}}), tmp_path / "other")
    monkeypatch.setenv("PGSSLROOTCERT", str(other.ca_file))
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        connect(server, rendered.host)


def test_should_refuse_a_tcp_connection_without_tls(tls_server) -> None:
    """The rendered pg_hba.conf has no line for TCP without TLS: sslmode disable is refused,
    with the right password."""
    server, rendered = tls_server
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        connect(server, rendered.host, sslmode="disable")


def test_should_let_psql_in_the_charts_containers_reach_the_server_over_tls(tls_server) -> None:
    """The drivers' wait-for-schema and the helm test run psql: with the rendered libpq
    environment it connects over TLS to the Service's name, as the chart's containers do."""
    server, rendered = tls_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        rendered.client_env,
        PGHOST=rendered.host, PGHOSTADDR="127.0.0.1", PGPORT=str(server.port),
        PGUSER=server.name, PGDATABASE=server.name, PGPASSWORD=server.password,
    )  # fmt: skip
    psql = find_postgres_bin() / "psql"
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    answer = subprocess.run(
        [str(psql), "-X", "-Atqc", query], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert (answer.returncode, answer.stdout.strip()) == (0, "t"), answer.stderr
