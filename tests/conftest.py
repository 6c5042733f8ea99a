"""Fixtures that start the real services once per session: Kafka, PostgreSQL, Spark.

Each test gets its own topic and its own database, so tests stay independent.
Nothing is mocked: the broker is Apache Kafka (KRaft) from .local/jars/kafka, the
database a private PostgreSQL from the system binaries, Spark runs in local mode.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from core.migrations import apply_migrations, grant_reader, grant_writer
from core.postgres import connect
from core.settings import LOCAL_DIR
from producer.topic import ensure_topic
from scripts.embedded.kafka_broker import KafkaBroker
from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer

# PySpark hands timestamps to Python in the process's local time zone; pin it to UTC.
os.environ["TZ"] = "UTC"
time.tzset()

KAFKA_JARS = LOCAL_DIR / "jars" / "kafka"
# A test that takes one of these fixtures needs a service started: `make check` leaves it out.
SERVICE_FIXTURES = frozenset({"kafka_broker", "postgres_server", "spark"})
SPARK_JARS = LOCAL_DIR / "jars" / "spark"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator[KafkaBroker]:
    """A real single-node Kafka broker for the whole test session."""
    if not any(KAFKA_JARS.glob("kafka_*.jar")):
        pytest.fail(f"no broker jars in {KAFKA_JARS}: run `make test` (it resolves them)")
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"),
        KAFKA_JARS,
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """A real private PostgreSQL server for the whole test session.

    Its folder is under pytest's basetemp, which is 0700: under root the server's user cannot
    enter it, so this also proves the relocation of PostgresServer.server_dir.
    """
    server = PostgresServer(tmp_path_factory.mktemp("postgres"), port=free_port())
    server.start()
    # libpq finds the roles' passwords there (the owner's, the jobs' writer's, the dashboard's reader's).
    os.environ["PGPASSFILE"] = str(server.pgpass_file)
    os.environ.pop("PGPASSWORD", None)
    yield server
    server.stop()
    server.delete_files()


@pytest.fixture
def topic(kafka_broker) -> str:
    """A fresh topic with 3 partitions, configured as the topic Job creates it (TOPIC_CONFIG:
    the broker's append time is each record's timestamp)."""
    name = f"tickets_{uuid.uuid4().hex[:10]}"
    assert ensure_topic(AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers}), name, 3, 30)
    return name


@pytest.fixture
def create_time_topic(kafka_broker) -> str:
    """A fresh topic with 3 partitions whose records keep their producer's timestamp
    (CreateTime), as a topic of the user's broker may: the tests that order copies of a
    ticket by timestamps of their own choosing need it."""
    name = f"tickets_{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    config = {"message.timestamp.type": "CreateTime"}
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1, config=config)])[name].result(
        30
    )
    return name


@pytest.fixture
def database_url(postgres_server) -> Iterator[str]:
    """A fresh database with the schema applied; dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    conn = connect(url, application_name="tests")
    apply_migrations(conn)
    grant_writer(conn, postgres_server.writer, password=None)
    grant_reader(conn, postgres_server.reader, password=None)
    conn.close()
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def writer_url(database_url, postgres_server) -> str:
    """The same database as `database_url`, as the jobs' least-privileged role."""
    return database_url.replace(f"//{postgres_server.name}@", f"//{postgres_server.writer}@", 1)


@pytest.fixture
def reader_url(database_url, postgres_server) -> str:
    """The same database as `database_url`, as the dashboard's read-only role."""
    return database_url.replace(f"//{postgres_server.name}@", f"//{postgres_server.reader}@", 1)


@pytest.fixture(scope="session")
def spark(postgres_server):
    """A local Spark session with the Kafka connector, shared by the session's tests. Its
    Python workers, where the jobs' sinks write, inherit the JVM's environment as it is at
    start: PostgreSQL's password file must be set by then."""
    from pyspark.sql import SparkSession

    jars = sorted(SPARK_JARS.glob("*.jar"))
    if not jars:
        pytest.fail(f"no Spark connector jars in {SPARK_JARS}: run `make test` (it resolves them)")
    # The jobs' sinks run in Python workers, which need this interpreter's packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ticket-pipeline-tests")
        .config("spark.jars", ",".join(map(str, jars)))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `services` every test that needs the broker, PostgreSQL or Spark (its fixtures,
    directly or through another fixture), so that `make check` can leave those out."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
