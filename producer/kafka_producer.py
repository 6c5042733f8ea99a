"""Sends generated tickets to Kafka: idempotent, acks=all, keyed by client_id."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import IO

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from producer.generator import TicketGenerator, encode
from producer.settings import ProducerSettings

__all__ = ["BrokerUnavailable", "Counters", "TicketProducer", "ensure_topic"]

logger = logging.getLogger(__name__)

_FLUSH_TIMEOUT_SECONDS = 30


class BrokerUnavailable(RuntimeError):
    """The Kafka broker could not be reached within the connect timeout."""


@dataclass
class Counters:
    """What the producer has done so far."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def ensure_topic(admin: AdminClient, topic: str, partitions: int, timeout_seconds: float) -> bool:
    """Create the topic unless it exists; return True if this call created it."""
    try:
        metadata = admin.list_topics(timeout=timeout_seconds)
    except KafkaException as e:
        raise BrokerUnavailable(str(e)) from e
    if topic in metadata.topics:
        return False
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        futures[topic].result(timeout=timeout_seconds)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return False
    logger.info("created topic %s with %d partitions", topic, partitions)
    return True


class TicketProducer:
    """Produces tickets at a steady rate until `count` is reached or a stop is requested."""

    def __init__(self, settings: ProducerSettings, generator: TicketGenerator | None = None) -> None:
        self.settings = settings
        self.counters = Counters()
        self._generator = generator or TicketGenerator(
            clients=settings.clients, seed=None if settings.seed < 0 else settings.seed
        )
        self._stop = threading.Event()
        self._ledger: IO[str] | None = None
        self._producer: Producer | None = None

    def check_broker(self) -> None:
        """Fail fast, naming the setting, when the broker does not answer; create the topic."""
        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap_servers, "log_level": 0})
        try:
            ensure_topic(
                admin,
                self.settings.topic,
                self.settings.partitions,
                self.settings.connect_timeout_seconds,
            )
        except BrokerUnavailable as e:
            raise BrokerUnavailable(
                f"Kafka broker unreachable at --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS="
                f"{self.settings.bootstrap_servers} after {self.settings.connect_timeout_seconds:g}s"
                f" (KAFKA_CONNECT_TIMEOUT_SECONDS): {e}"
            ) from e

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop after the current ticket (signal-handler compatible)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def run(self, report: Callable[[Counters, float], None] | None = None) -> Counters:
        """Produce until done or stopped, then flush; return the counters."""
        settings = self.settings
        self._producer = Producer(_producer_config(settings))
        if settings.ledger_file:
            self._ledger = open(settings.ledger_file, "a", buffering=1)  # noqa: SIM115
        interval = 1.0 / settings.rate if settings.rate > 0 else 0.0
        started = time.monotonic()
        next_progress = started + settings.progress_interval_seconds
        next_send = started
        last_sent, last_time = 0, started
        try:
            while not self._stop.is_set():
                if settings.count and self.counters.sent >= settings.count:
                    break
                if interval:
                    delay = next_send - time.monotonic()
                    if delay > 0:
                        self._producer.poll(min(delay, 0.1))
                        continue
                    next_send += interval
                self._send(self._generator.ticket())
                now = time.monotonic()
                if now >= next_progress:
                    rate = (self.counters.sent - last_sent) / max(now - last_time, 1e-9)
                    (report or _log_progress)(self.counters, rate)
                    last_sent, last_time = self.counters.sent, now
                    next_progress = now + settings.progress_interval_seconds
        finally:
            self._flush()
            if self._ledger:
                self._ledger.close()
        elapsed = time.monotonic() - started
        (report or _log_progress)(self.counters, self.counters.sent / max(elapsed, 1e-9))
        return self.counters

    def _send(self, ticket: dict[str, str]) -> None:
        value = encode(ticket)
        while True:
            try:
                self._producer.produce(
                    self.settings.topic,
                    key=ticket["client_id"].encode(),
                    value=value,
                    on_delivery=partial(self._on_delivery, ticket["ticket_id"]),
                )
                break
            except BufferError:
                # The local queue is full: serve delivery reports to make room.
                self._producer.poll(0.5)
        self.counters.sent += 1
        self._producer.poll(0)

    def _on_delivery(self, ticket_id: str, error: KafkaError | None, _: Message) -> None:
        if error is None:
            self.counters.acknowledged += 1
            if self._ledger:
                self._ledger.write(ticket_id + "\n")
            return
        self.counters.failed += 1
        name = error.name()
        self.counters.errors[name] = self.counters.errors.get(name, 0) + 1
        logger.error("delivery failed: %s", error)

    def _flush(self) -> None:
        pending = self._producer.flush(_FLUSH_TIMEOUT_SECONDS)
        if pending:
            logger.error("%d ticket(s) still undelivered after %ss flush", pending, _FLUSH_TIMEOUT_SECONDS)


def _log_progress(counters: Counters, rate: float) -> None:
    logger.info(
        "sent %d, acknowledged %d, failed %d, rate %.0f tickets/s",
        counters.sent,
        counters.acknowledged,
        counters.failed,
        rate,
    )


def _producer_config(settings: ProducerSettings) -> dict:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.size": 256 * 1024,
        "compression.type": "lz4",
        # Keep retrying through a broker outage rather than dropping tickets.
        "message.timeout.ms": 300_000,
        "error_cb": _on_kafka_error,
    }


def _on_kafka_error(error: KafkaError) -> None:
    # Transient errors (broker down) are retried by librdkafka; they are only logged.
    logger.warning("kafka: %s", error)
