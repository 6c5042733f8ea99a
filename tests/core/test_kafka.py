"""core.kafka against a real broker: the clients' configuration, the wait for the broker,
and the error that names the setting when no broker answers."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer

from core.kafka import (
    BrokerUnavailable,
    KafkaConnection,
    client_config,
    spark_options,
    wait_for_broker,
)
from core.settings import SettingError, load
from producer.settings import TopicSettings
from scripts.embedded.kafka_broker import CLIENT_USER
from scripts.embedded.ports import free_port


def test_a_plain_bootstrap_string_is_a_plaintext_connection():
    """A "host:port" string gives librdkafka clients and Spark's source the same bootstrap
    servers, in plaintext."""
    config = client_config("b:9092", {"group.id": "g"})
    plaintext = {"bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT"}
    assert config == {**plaintext, "group.id": "g"}
    assert spark_options("b:9092") == {f"kafka.{key}": value for key, value in plaintext.items()}


def test_a_client_of_client_config_reaches_the_sasl_ssl_broker(kafka_broker, kafka_connection, topic):
    """A consumer built from client_config, with its own keys, reaches the session's broker
    over SASL_SSL: the broker's user and password, its CA."""
    config = client_config(kafka_connection, {"group.id": "test-core-kafka", "log_level": 0})
    assert config == {
        "bootstrap.servers": kafka_broker.bootstrap_servers, "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": CLIENT_USER,
        "sasl.password": kafka_connection.sasl_password, "ssl.ca.location": kafka_connection.ssl_ca_file,
        "group.id": "test-core-kafka", "log_level": 0,
    }  # fmt: skip
    consumer = Consumer(config)
    try:
        assert topic in consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()


def test_the_wait_returns_the_metadata_once_the_broker_answers(kafka_broker, kafka_connection):
    """wait_for_broker returns at once, with the cluster's metadata, when the broker answers."""
    started = time.monotonic()
    metadata = wait_for_broker(kafka_connection, 10)
    assert [broker.port for broker in metadata.brokers.values()] == [kafka_broker.port]
    assert time.monotonic() - started < 5


def test_the_session_broker_answers_no_plaintext_client(kafka_broker):
    """The session's broker has no plaintext door: a PLAINTEXT client gets no metadata, so no
    test of the suite reaches it but over SASL_SSL."""
    with pytest.raises(BrokerUnavailable):
        wait_for_broker(kafka_broker.bootstrap_servers, 3)


def test_an_unreachable_broker_raises_naming_the_setting_after_the_timeout():
    """No broker on the port: BrokerUnavailable once the timeout has passed, not long after,
    naming KAFKA_BOOTSTRAP_SERVERS with its value, the timeout and the timeout's setting."""
    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as raised:
        wait_for_broker(
            bootstrap, 2, timeout_setting="--connect-timeout-seconds / KAFKA_CONNECT_TIMEOUT_SECONDS"
        )
    elapsed = time.monotonic() - started
    assert str(raised.value).startswith(
        f"Kafka broker unreachable at --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS={bootstrap} after 2s"
        " (--connect-timeout-seconds / KAFKA_CONNECT_TIMEOUT_SECONDS): "
    )
    assert 2 <= elapsed < 6


def test_a_failing_check_stops_the_wait_at_once():
    """The check run before each attempt stops the wait with its own error (a broker process
    that exited), without waiting for the timeout."""

    def exited() -> None:
        raise RuntimeError("the broker exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the broker exited"):
        wait_for_broker(f"127.0.0.1:{free_port()}", 30, attempt_seconds=1, check=exited)
    assert time.monotonic() - started < 5


SASL_SSL = KafkaConnection("b:9093", "SASL_SSL", "SCRAM-SHA-256", "alice", 'pa"ss\\word', "/ca.pem")


def test_a_sasl_ssl_connection_in_librdkafka_names():
    assert client_config(SASL_SSL, {"group.id": "g"}) == {
        "bootstrap.servers": "b:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice", "sasl.password": 'pa"ss\\word', "ssl.ca.location": "/ca.pem",
        "group.id": "g",
    }  # fmt: skip


def test_the_same_connection_in_the_java_names_of_spark_with_the_password_quoted_for_jaas():
    assert spark_options(SASL_SSL) == {
        "kafka.bootstrap.servers": "b:9093",
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-256",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required"
        ' username="alice" password="pa\\"ss\\\\word";',
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.location": "/ca.pem",
    }


def test_the_password_is_never_in_the_repr_of_a_connection():
    assert "pa" not in repr(SASL_SSL).split("sasl_username")[1]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SSL_CA_FILE": "/no/such/ca.pem"}, "KAFKA_SSL_CA_FILE"),
    ],
)
def test_a_wrong_security_setting_fails_at_start_naming_it(environ, named):
    with pytest.raises(SettingError, match=named):
        load(TopicSettings, [], environ=environ)


def test_settings_make_the_connection_with_the_password_of_the_environment():
    environ = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    connection = KafkaConnection.from_settings(load(TopicSettings, [], environ=environ), environ)
    assert (connection.security_protocol, connection.sasl_username, connection.sasl_password) == (
        "SASL_PLAINTEXT", "u", "p",
    )  # fmt: skip
    assert "ssl.ca.location" not in connection.librdkafka()
