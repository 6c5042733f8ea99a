"""core.kafka against a real broker: the clients' configuration, the wait for the broker,
and the error that names the setting when no broker answers."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer

from core.kafka import BrokerUnavailable, admin_client, client_config, spark_options, wait_for_broker
from scripts.embedded.ports import free_port


def test_every_client_configuration_carries_the_bootstrap_servers(kafka_broker, topic):
    """librdkafka clients and Spark's source get the same bootstrap servers, and a consumer
    built from client_config, with its own keys, reaches the broker through them."""
    bootstrap = kafka_broker.bootstrap_servers
    config = client_config(bootstrap, {"group.id": "test-core-kafka", "log_level": 0})
    assert config == {"bootstrap.servers": bootstrap, "group.id": "test-core-kafka", "log_level": 0}
    assert spark_options(bootstrap) == {"kafka.bootstrap.servers": bootstrap}
    consumer = Consumer(config)
    try:
        assert topic in consumer.list_topics(timeout=10).topics
    finally:
        consumer.close()


def test_the_wait_returns_the_metadata_once_the_broker_answers(kafka_broker):
    """wait_for_broker returns at once, with the cluster's metadata, when the broker answers."""
    started = time.monotonic()
    metadata = wait_for_broker(
        kafka_broker.bootstrap_servers, 10, admin=admin_client(kafka_broker.bootstrap_servers)
    )
    assert [broker.port for broker in metadata.brokers.values()] == [kafka_broker.port]
    assert time.monotonic() - started < 5


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
