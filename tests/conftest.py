"""Fixtures that start the real services once per session: Kafka, PostgreSQL, Spark.

Each test gets its own topic and its own database, so tests stay independent.
Nothing is mocked: the broker is Apache Kafka (KRaft) from .local/jars/kafka, the
database a private PostgreSQL from the system binaries, Spark runs in local mode.

The broker has one client listener, SASL_SSL (TLS with a CA of its own, a SCRAM-SHA-512
user), as a production broker should: every client of a test talks to it so. Tests build
their clients from `kafka_connection` (`core.kafka.client_config`, `admin_client`,
`spark_options`, `kafka_flags`), and give a program they start `kafka_env`, as a user's
environment would.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import NewTopic

from core.kafka import KafkaConnection, admin_client
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
    """A real single-node Kafka broker for the whole test session, whose only client listener
    is SASL_SSL.

    While it runs, its client environment (`KafkaBroker.client_env`: the bootstrap servers,
    SASL_SSL, the user and its password, the CA file) is in os.environ, as a user's would be:
    the programs a test runs in-process build their connection from it
    (`KafkaConnection.from_settings` reads the password there), Spark's executors read the
    password from the environment the session fixture `spark` starts with, and a program a
    test starts inherits it. A test on a broker of its own gives its programs that broker's
    `client_env()`, which sets every one of these variables.
    """
    if not any(KAFKA_JARS.glob("kafka_*.jar")):
        pytest.fail(f"no broker jars in {KAFKA_JARS}: run `make test` (it resolves them)")
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"),
        KAFKA_JARS,
        port=free_port(),
        controller_port=free_port(),
        heap="512m",
        secure=True,
    )
    broker.start()
    env = broker.client_env()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield broker
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    broker.stop()


@pytest.fixture(scope="session")
def kafka_connection(kafka_broker) -> KafkaConnection:
    """How a client reaches the session's broker: SASL_SSL, as the pipeline's user."""
    return kafka_broker.connection()


@pytest.fixture(scope="session")
def kafka_env(kafka_broker) -> dict[str, str]:
    """The environment that makes a program of the pipeline a client of the session's broker
    (KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, the SASL user and password, the CA)."""
    return kafka_broker.client_env()


def kafka_flags(connection: KafkaConnection) -> list[str]:
    """The command-line flags of a program of the pipeline for `connection`; SASL's password
    is no flag: it goes in the environment (KAFKA_SASL_PASSWORD)."""
    flags = ["--bootstrap-servers", connection.bootstrap_servers]
    flags += ["--kafka-security-protocol", connection.security_protocol]
    if connection.uses_sasl:
        flags += ["--kafka-sasl-mechanism", connection.sasl_mechanism]
        flags += ["--kafka-sasl-username", connection.sasl_username]
    if connection.ssl_ca_file:
        flags += ["--kafka-ssl-ca-file", connection.ssl_ca_file]
    return flags


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
def topic(kafka_connection) -> str:
    """A fresh topic with 3 partitions, configured as the topic Job creates it (TOPIC_CONFIG:
    the broker's append time is each record's timestamp)."""
    name = f"tickets_{uuid.uuid4().hex[:10]}"
    assert ensure_topic(admin_client(kafka_connection), name, 3, 30)
    return name


@pytest.fixture
def create_time_topic(kafka_connection) -> str:
    """A fresh topic with 3 partitions whose records keep their producer's timestamp
    (CreateTime), as a topic of the user's broker may: the tests that order copies of a
    ticket by timestamps of their own choosing need it."""
    name = f"tickets_{uuid.uuid4().hex[:10]}"
    admin = admin_client(kafka_connection)
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
def spark(postgres_server, kafka_broker):
    """A local Spark session with the Kafka connector, shared by the session's tests. Its
    Python workers, where the jobs' sinks write, inherit the JVM's environment as it is at
    start: PostgreSQL's password file and the broker's client environment (SASL's password,
    with which the executors read a refused record back) must be set by then."""
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
