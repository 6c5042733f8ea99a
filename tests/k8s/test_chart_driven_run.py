"""A chart-driven run: the chart's own commands, run natively against the local services.

The rendered migrate Job, topic Job, producer and dashboard Deployments and both
SparkApplications are taken as they are (command, env, sparkConf, mainApplicationFile); only
the in-cluster host names are mapped to the local PostgreSQL, the image's paths to the repo,
the mounted Kafka CA to the local broker's, the Kubernetes master to local mode, and each
secret reference, by its key, to the local password of that role (the owner's for the migrate
Job, the writer's for the drivers, the reader's for the dashboard, the broker's SCRAM user's
for every Kafka client). The chart is rendered for the session's broker as an external one
over SASL_SSL (`externalKafka.tls` and `externalKafka.sasl`), and with PostgreSQL's TLS off:
the local PostgreSQL has none (tests/k8s/test_postgresql_tls.py serves the chart's TLS).
Tickets must land in the tables, and the dashboard, connected as the read-only reader role,
must show them. This proves the chart runs the code the way the tests do, with the Spark jobs
connected as the least-privileged writer role. The topic Job creates and grows its topic on
that broker with nothing mapped but its password and CA file.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pyspark
import pytest
from psycopg2 import sql

from core.contract import TABLES
from core.kafka import admin_client
from scripts.embedded.ports import free_port
from tests.conftest import SPARK_JARS
from tests.dashboard.page import basic_auth, served_text
from tests.embedded_run import wait_until

from .render import (
    IMAGE_WORKDIR,
    REPO_ROOT,
    containers,
    env_of,
    find,
    of_kind,
    render_chart,
    replace_hosts,
    secret_passwords,
    spark_run_spec,
)

pytestmark = pytest.mark.integration

_SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
# The key of the Kafka user's password in its Secret: one that no PostgreSQL password uses, as
# secret references resolve by key here.
KAFKA_PASSWORD_KEY = "kafka-password"


def chart_values(kafka_broker, **more: Any) -> dict[str, Any]:
    """Values that point the chart at the session's broker as an external one, over SASL_SSL
    with its CA and SCRAM user, and turn PostgreSQL's TLS off (the local server has none)."""
    connection = kafka_broker.connection()
    return {
        "externalKafka": {
            "bootstrapServers": connection.bootstrap_servers,
            "tls": {"enabled": True, "caSecret": "kafka-ca"},
            "sasl": {
                "enabled": True,
                "mechanism": connection.sasl_mechanism,
                "username": connection.sasl_username,
                "existingSecret": "kafka-credentials",
                "passwordKey": KAFKA_PASSWORD_KEY,
            },
        },
        "postgresql": {"tls": {"enabled": False}},
        **more,
    }


def local_env(
    declared: dict[str, Any], addresses: dict[str, str], passwords: dict[str, str], kafka_broker
) -> dict[str, str]:
    """The chart's env with local addresses; each secret reference resolves, by its key, to the
    local password of that key (``passwords`` maps Secret keys to passwords); the CA file
    mounted from the Kafka CA's Secret is the local broker's."""
    env = {}
    for name, value in declared.items():
        if isinstance(value, dict):
            assert "secretKeyRef" in value, f"{name}: only secret references are expected"
            key = value["secretKeyRef"]["key"]
            assert key in passwords, f"{name}: unknown Secret key {key!r}"
            env[name] = passwords[key]
        elif name in ("METRICS_PORT", "DASHBOARD_PORT"):
            env[name] = str(free_port())  # a pod's own port; on this machine, any free one
        elif name == "KAFKA_SSL_CA_FILE":
            assert value == "/etc/kafka-ca/ca.crt", value
            env[name] = kafka_broker.connection().ssl_ca_file
        else:
            env[name] = replace_hosts(str(value), addresses).replace(IMAGE_WORKDIR, str(REPO_ROOT))
    return env


def local_command(command: list[str]) -> list[str]:
    """The container's command, with the image's python replaced by this interpreter."""
    assert command[0] == "python", command
    return [sys.executable, *command[1:]]


def spark_submit_command(app: dict[str, Any]) -> list[str]:
    """What the operator submits, in local mode: same main file, same sparkConf and arguments."""
    spec = spark_run_spec(app)
    assert spec.local_main_file.is_file(), spec.local_main_file
    command = [str(_SPARK_SUBMIT), "--master", "local[1]", "--name", spec.name]
    command += ["--jars", ",".join(str(j) for j in sorted(SPARK_JARS.glob("*.jar")))]
    for key, value in spec.spark_conf.items():
        command += ["--conf", f"{key}={value}"]
    command += ["--driver-memory", app["spec"]["driver"].get("memory", "512m")]
    return [*command, str(spec.local_main_file), *app["spec"].get("arguments", [])]


@contextlib.contextmanager
def owner_as_in_the_image(server) -> Iterator[None]:
    """Give the local owner CREATEROLE meanwhile, as the chart's init script does
    (tests/k8s/test_schema_owner.py runs that script): the migrate Job sets the writer's and
    the reader's passwords, which needs it; the embedded owner goes back to a plain role after."""

    def alter(option: str) -> None:
        conn = server.admin_connection()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(server.name), sql.SQL(option)))
        finally:
            conn.close()

    alter("CREATEROLE")
    try:
        yield
    finally:
        alter("NOCREATEROLE")


def run_rendered(
    container: dict[str, Any], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run a rendered Job's container natively, its command with this interpreter, to its end."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "KAFKA_"))}
    return subprocess.run(
        local_command(container["command"] + container.get("args", [])),
        env={**inherited, "PYTHONPATH": str(REPO_ROOT), **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dashboard_count(
    container: dict[str, Any], env: dict[str, str], process: subprocess.Popen, logs: Path
) -> int:
    """The stored count on the dashboard's page at /, with the user and password of its ``env``,
    once its readiness probe's path answers 200 without them and the page holds a first figure
    (tests/dashboard checks the page that a browser renders)."""
    port, credentials = env["DASHBOARD_PORT"], basic_auth(env["DASHBOARD_USER"], env["DASHBOARD_PASSWORD"])
    probe = f"http://127.0.0.1:{port}{container['readinessProbe']['httpGet']['path']}"

    def shown() -> str | None:
        assert process.poll() is None, "dashboard exited:\n" + (logs / "dashboard.log").read_text()[-3000:]
        urllib.request.urlopen(probe, timeout=30).close()  # an error until it answers 200
        text = (served_text(f"http://127.0.0.1:{port}/", "stored", credentials) or "").replace(",", "")
        return text if text.isdigit() else None

    return int(wait_until("the dashboard's first count", shown, 60))


def rows(url: str, password: str, statement: str) -> list[tuple]:
    conn = psycopg2.connect(url, password=password)
    with conn.cursor() as cur:
        cur.execute(statement)
        result = cur.fetchall()
    conn.close()
    return result


def test_the_rendered_commands_land_tickets_in_postgresql(kafka_broker, postgres_server, tmp_path):
    """Migrate Job, producer Deployment and both SparkApplications, run as rendered, fill the tables."""
    objects = render_chart(chart_values(kafka_broker))
    addresses = {"postgresql": f"127.0.0.1:{postgres_server.port}"}
    password = postgres_server.password
    # The chart's Secret keys -> the local passwords of the owner, the writer and the reader.
    passwords = secret_passwords(
        postgres_server.password, postgres_server.writer_password, postgres_server.reader_password
    )
    passwords[KAFKA_PASSWORD_KEY] = kafka_broker.connection().sasl_password
    # No PGPASSFILE, no Kafka setting of the session's: every password and every connection
    # setting must come from the chart.
    base_env = {
        k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith(("PG", "KAFKA_"))
    }
    # The image's SPARK_HOME, PYSPARK_PYTHON and PYTHONPATH, here: pyspark's own and this venv.
    base_env.update(
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        PYSPARK_PYTHON=sys.executable,
    )

    # The chart's database: start from an empty one, as a fresh install does.
    postgres_server.drop_database("tickets")
    postgres_server.create_database("tickets")

    migrate = next(c for job in of_kind(objects, "Job") for c in containers(job) if c["name"] == "migrate")
    migrate_env = local_env(env_of(migrate), addresses, passwords, kafka_broker)
    url = migrate_env["DATABASE_URL"]
    assert url == f"postgresql://tickets@127.0.0.1:{postgres_server.port}/tickets"
    with owner_as_in_the_image(postgres_server):
        run = subprocess.run(
            local_command(migrate["command"] + migrate.get("args", [])),
            env={**base_env, **migrate_env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr

    # The topic Job, as the post-install hook runs it: the topic exists before any producer.
    topic_job = containers(find(objects, "Job", "kafka-topic"))[0]
    topic_env = local_env(env_of(topic_job), addresses, passwords, kafka_broker)
    run = run_rendered(topic_job, topic_env)
    assert run.returncode == 0, run.stderr
    created = re.search(r"has (\d+) partitions \(wanted (\d+)\)", run.stderr)
    assert created and int(created[1]) >= int(created[2]) == int(topic_env["TOPIC_PARTITIONS"]), run.stderr

    producer = containers(find(objects, "Deployment", "producer"))[0]
    producer_env = local_env(env_of(producer), addresses, passwords, kafka_broker)
    processes: list[tuple[str, subprocess.Popen]] = []
    logs = {}
    try:
        for name in ("enrichment", "aggregation"):
            app = find(objects, "SparkApplication", name)
            env = local_env(env_of(app["spec"]["driver"]), addresses, passwords, kafka_broker)
            assert env["DATABASE_URL"] == url.replace("//tickets@", f"//{postgres_server.writer}@", 1)
            env["CHECKPOINT_DIR"] = str(tmp_path / name)  # the PVC mount in the pod
            logs[name] = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
            processes.append(
                (
                    name,
                    subprocess.Popen(
                        spark_submit_command(app),
                        env={**base_env, **env},
                        cwd=tmp_path,
                        stdout=logs[name],
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        logs["producer"] = open(tmp_path / "producer.log", "w")  # noqa: SIM115
        producer_process = subprocess.Popen(
            local_command(producer["command"] + producer.get("args", [])),
            env={**base_env, **producer_env},
            cwd=REPO_ROOT,
            stdout=logs["producer"],
            stderr=subprocess.STDOUT,
        )
        processes.append(("producer", producer_process))

        deadline = time.monotonic() + 240
        stored = 0
        while stored < 60 and time.monotonic() < deadline:
            for name, process in processes:
                assert process.poll() is None, (
                    f"{name} exited:\n" + (tmp_path / f"{name}.log").read_text()[-3000:]
                )
            time.sleep(3)
            stored = rows(url, password, f"SELECT count(*) FROM {TABLES.tickets}")[0][0]
        assert stored >= 60, (tmp_path / "enrichment.log").read_text()[-3000:]

        # Stop producing, let both jobs drain, then the counts must match the table.
        producer_process.send_signal(signal.SIGTERM)
        assert producer_process.wait(30) == 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counted = dict(rows(url, password, f"SELECT type, ticket_count FROM {TABLES.aggregation}"))
            grouped = dict(rows(url, password, f"SELECT type, count(*) FROM {TABLES.tickets} GROUP BY type"))
            if counted and counted == grouped:
                break
            time.sleep(2)
        assert counted == grouped
        assert rows(url, password, f"SELECT count(*) FROM {TABLES.rejected}") == [(0,)]

        # The dashboard Deployment, as rendered: its page shows what `tickets` holds. Both jobs
        # have drained; should a last row still land, the page's count lies between the two
        # counts taken before the dashboard starts and after its page shows a figure.
        count = f"SELECT count(*) FROM {TABLES.tickets}"
        before = rows(url, password, count)[0][0]
        dashboard = containers(find(objects, "Deployment", "dashboard"))[0]
        # Its page's password (DASHBOARD_PASSWORD, from its Secret): one of this run's.
        page_key = env_of(dashboard)["DASHBOARD_PASSWORD"]["secretKeyRef"]["key"]
        dashboard_env = local_env(
            env_of(dashboard), addresses, {**passwords, page_key: "page-password"}, kafka_broker
        )
        assert dashboard_env["DATABASE_URL"] == url.replace("//tickets@", f"//{postgres_server.reader}@", 1)
        logs["dashboard"] = open(tmp_path / "dashboard.log", "w")  # noqa: SIM115
        processes.append(
            (
                "dashboard",
                subprocess.Popen(
                    local_command(dashboard["command"] + dashboard.get("args", [])),
                    env={**base_env, **dashboard_env},
                    cwd=tmp_path,
                    stdout=logs["dashboard"],
                    stderr=subprocess.STDOUT,
                ),
            )
        )
        shown = dashboard_count(dashboard, dashboard_env, processes[-1][1], tmp_path)
        after = rows(url, password, count)[0][0]
        assert before <= shown <= after, (before, shown, after)
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs.values():
            log.close()


def test_the_rendered_topic_job_creates_and_grows_the_topic_on_an_external_broker(kafka_broker):
    """Rendered with externalKafka = the local broker over SASL_SSL, the topic Job runs with its
    env as rendered (its password and CA file resolved): install creates the topic with 2
    partitions, an upgrade to 5 adds 3, an upgrade back to 3 removes none."""
    topic = f"external_{time.time_ns()}"
    admin = admin_client(kafka_broker.connection())
    passwords = {KAFKA_PASSWORD_KEY: kafka_broker.connection().sasl_password}

    def install_or_upgrade(partitions: int) -> str:
        objects = render_chart(chart_values(kafka_broker, topic={"name": topic, "partitions": partitions}))
        job = containers(find(objects, "Job", "kafka-topic"))[0]
        env = local_env(env_of(job), {}, passwords, kafka_broker)
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == kafka_broker.bootstrap_servers
        run = run_rendered(job, env)
        assert run.returncode == 0, run.stderr
        return run.stderr

    assert "has 2 partitions (wanted 2): created" in install_or_upgrade(2)
    assert "has 5 partitions (wanted 5): grown from 2" in install_or_upgrade(5)
    assert "has 5 partitions (wanted 3): left as it was" in install_or_upgrade(3)
    deadline = time.monotonic() + 10
    while len(admin.list_topics(timeout=10).topics[topic].partitions) != 5:
        assert time.monotonic() < deadline, "the topic does not show 5 partitions"
        time.sleep(0.2)
