"""A producer whose deliveries stall while the broker answers replaces its Kafka client."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from confluent_kafka import Consumer

from core.kafka import KafkaConnection, client_config
from core.settings import load
from producer.generator import ticket_id_of
from producer.kafka_producer import Counters, TicketProducer
from producer.settings import ProducerSettings
from scripts.embedded.kafka_broker import KafkaBroker
from tests.conftest import KAFKA_JARS, free_port
from tests.producer.freezing_proxy import FreezingProxy

pytestmark = pytest.mark.integration

TICKETS = 3000


def wait_for(condition, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def topic_ids_until(kafka: KafkaConnection, topic: str, wanted: set[str], timeout_seconds: float) -> set[str]:
    """The ticket_ids read from the topic once all of `wanted` are seen, or at the timeout."""
    consumer = Consumer(client_config(kafka, {"group.id": f"audit-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_seconds
    try:
        while not wanted <= seen and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and not message.error():
                seen.add(ticket_id_of(message.value()))
    finally:
        consumer.close()
    return seen


def test_a_stalled_client_is_replaced_and_every_ticket_is_acknowledged_once(tmp_path, monkeypatch):
    """The producer's connections go silent while the broker still answers new ones (a
    client stuck after a broker restart looks the same): after the stall timeout the
    producer replaces its Kafka client and re-sends what it held. Every ticket is then
    acknowledged exactly once, and every one is in the topic.

    A broker of its own, SASL_SSL as the session's, behind the proxy (TLS passes through
    it); the producer runs in-process, with that broker's client environment."""
    broker_port = free_port()
    proxy = FreezingProxy(broker_port)
    broker = KafkaBroker(
        tmp_path / "kafka",
        KAFKA_JARS,
        port=broker_port,
        controller_port=free_port(),
        advertised_port=proxy.port,
        heap="512m",
        secure=True,
    )
    broker.start()
    try:
        kafka = dataclasses.replace(broker.connection(), bootstrap_servers=f"127.0.0.1:{proxy.port}")
        env = {**broker.client_env(), "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
        for name, value in env.items():  # the producer reads SASL's password there
            monkeypatch.setenv(name, value)
        ledger = tmp_path / "ledger.txt"
        settings = load(
            ProducerSettings,
            [
                "--rate",
                "200",
                "--count",
                str(TICKETS),
                "--stall-timeout-seconds",
                "2",
                "--ledger-file",
                str(ledger),
            ],
            environ=env,
        )
        producer = TicketProducer(settings)
        producer.check_broker()
        result: list[Counters] = []
        thread = threading.Thread(target=lambda: result.append(producer.run(report=lambda *_: None)))
        thread.start()
        assert wait_for(lambda: producer.counters.acknowledged >= 200, 30), producer.counters
        proxy.freeze()
        frozen_at = producer.counters.acknowledged
        assert wait_for(lambda: producer.counters.client_restarts >= 1, 30), producer.counters
        thread.join(60)
        assert result, f"the producer did not finish: {producer.counters}"
        counters = result[0]
        assert (counters.sent, counters.acknowledged, counters.failed) == (TICKETS, TICKETS, 0)
        assert frozen_at < TICKETS
        acknowledged = ledger.read_text().split()
        assert len(acknowledged) == len(set(acknowledged)) == TICKETS
        # Tickets in flight when the connections froze may be in the topic twice (written,
        # then re-sent): the jobs store those once. None may be missing.
        in_topic = topic_ids_until(kafka, settings.topic, set(acknowledged), 30)
        assert in_topic == set(acknowledged)
    finally:
        broker.kill()
        proxy.close()
