"""Sends generated tickets to Kafka: idempotent, acks=all, keyed by client_id."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.contract import PRODUCER_BATCH_BYTES
from core.kafka import KafkaConnection, admin_client, client_config
from producer.generator import TicketGenerator, ticket_id_of
from producer.settings import ProducerSettings
from producer.stall import StallWatch
from producer.topic import ensure_topic, wait_for_settings_broker

__all__ = ["Counters", "TicketProducer"]

logger = logging.getLogger(__name__)

_FLUSH_TIMEOUT_SECONDS = 30
# Tickets generated and queued between two checks of the clock, stop flag and rate.
_BURST = 256
_FULL_QUEUE_WAIT_SECONDS = 0.005
_STALL_CHECK_SECONDS = 1.0
_PROBE_TIMEOUT_SECONDS = 5.0
# Purge reports are served locally; this only bounds a misbehaving client.
_PURGE_SERVE_SECONDS = 10.0
_PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


@dataclass
class Counters:
    """What the producer has done so far."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # Kafka clients replaced after a stall (see PRODUCER_STALL_TIMEOUT_SECONDS).
    client_restarts: int = 0
    # Tickets per second sent over the last progress interval.
    rate: float = 0.0


class TicketProducer:
    """Produces tickets at a steady rate until `count` is reached or a stop is requested."""

    def __init__(self, settings: ProducerSettings, generator: TicketGenerator | None = None) -> None:
        self.settings = settings
        self._connection = KafkaConnection.from_settings(settings)
        self.counters = Counters()
        self._generator = generator or TicketGenerator(
            clients=settings.clients, seed=None if settings.seed < 0 else settings.seed
        )
        self._stop = threading.Event()
        self._ledger: IO[str] | None = None
        self._producer: Producer | None = None
        self._track = False
        self._stall = StallWatch(settings.stall_timeout_seconds, time.monotonic())
        self._next_stall_check = 0.0
        # (key, value) of purged tickets while the client is being replaced; None otherwise.
        self._purged: list[tuple[bytes, bytes]] | None = None

    def check_broker(self) -> None:
        """Fail fast, naming the setting, when the broker does not answer; create the topic."""
        settings = self.settings
        wait_for_settings_broker(settings, self._connection)
        admin = admin_client(self._connection)
        if ensure_topic(admin, settings.topic, settings.partitions, settings.connect_timeout_seconds):
            logger.info("created topic %s with %d partitions", settings.topic, settings.partitions)

    def queued(self) -> int:
        """Tickets handed to the Kafka client and not yet acknowledged or failed."""
        return len(self._producer) if self._producer is not None else 0

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop after the current burst of tickets (signal-handler compatible)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def run(self, report: Callable[[Counters, float], None] | None = None) -> Counters:
        """Produce until done or stopped, then flush; return the counters."""
        settings = self.settings
        report = report or _log_progress
        # Each acknowledged ticket_id is written from its delivery report when a ledger is
        # kept; otherwise delivery reports are only served for failures, and the
        # acknowledged count is derived: sent - failed - still in the producer's queue.
        self._track = bool(settings.ledger_file)
        self._producer = self._new_client()
        if self._track:
            self._ledger = open(settings.ledger_file, "a", buffering=1)  # noqa: SIM115
        rate, count = settings.rate, settings.count
        counters = self.counters
        started = time.monotonic()
        next_progress = started + settings.progress_interval_seconds
        last_sent, last_time = 0, started
        try:
            while not self._stop.is_set():
                burst = _BURST
                if count:
                    burst = min(burst, count - counters.sent)
                    if burst <= 0:
                        break
                if rate > 0:
                    # Tickets due so far: one at start, then one every 1/rate seconds.
                    now = time.monotonic()
                    due = int((now - started) * rate) + 1 - counters.sent
                    if due <= 0:
                        next_due = started + counters.sent / rate
                        # At least 1 ms: a short sleep, then a burst of what fell due, rather than a spin.
                        self._producer.poll(min(max(next_due - now, 0.001), 0.1))
                        continue
                    burst = min(burst, due)
                self._send(self._generator.batch(burst))
                now = time.monotonic()
                self._watch_for_stall(now)
                if now >= next_progress:
                    self._count_acknowledged()
                    counters.rate = (counters.sent - last_sent) / max(now - last_time, 1e-9)
                    report(counters, counters.rate)
                    last_sent, last_time = counters.sent, now
                    next_progress = now + settings.progress_interval_seconds
        finally:
            self._flush()
            if self._ledger:
                self._ledger.close()
        elapsed = time.monotonic() - started
        report(counters, counters.sent / max(elapsed, 1e-9))
        return counters

    def _send(self, tickets: list[tuple[bytes, bytes]]) -> None:
        """Queue (key, value) pairs, waiting for room when the local queue is full."""
        produce, topic = self._producer.produce, self.settings.topic
        sent = 0
        try:
            for key, value in tickets:
                try:
                    produce(topic, value, key)
                except BufferError:
                    if not self._produce_when_room(topic, value, key):
                        break  # stop requested while the queue was full
                sent += 1
        finally:
            self.counters.sent += sent
            self._producer.poll(0)

    def _produce_when_room(self, topic: str, value: bytes, key: bytes) -> bool:
        """Produce once the full local queue has room; False if a stop came first."""
        while not self._stop.is_set():
            # Serve delivery reports to make room. Successful deliveries may raise no
            # callback, so poll is short: it does not return early for them.
            self._producer.poll(_FULL_QUEUE_WAIT_SECONDS)
            self._watch_for_stall(time.monotonic())
            try:
                self._producer.produce(topic, value, key)
                return True
            except BufferError:
                continue
        return False

    def _new_client(self) -> Producer:
        return Producer(_producer_config(self._connection, self.settings, self._on_delivery))

    def _watch_for_stall(self, now: float) -> None:
        """Replace the Kafka client when queued tickets get no acknowledgement for the stall
        timeout although the broker answers (a client stuck after a broker restart)."""
        if now < self._next_stall_check:
            return
        self._next_stall_check = now + _STALL_CHECK_SECONDS
        self._count_acknowledged()
        waiting = len(self._producer)
        stalled = self._stall.stalled_for(self.counters.acknowledged, waiting, now)
        if not stalled:
            return
        if not _broker_answers(self._connection, self.settings.topic):
            logger.warning(
                "no acknowledgement for %.0fs, %d ticket(s) waiting: the broker does not answer",
                stalled,
                waiting,
            )
            self._stall.restart(time.monotonic())
            return
        logger.error(
            "no acknowledgement for %.0fs while %d ticket(s) wait and the broker answers:"
            " restarting the Kafka client and re-sending them (PRODUCER_STALL_TIMEOUT_SECONDS=%g)",
            stalled,
            waiting,
            self.settings.stall_timeout_seconds,
        )
        self._restart_client()
        self._stall.restart(time.monotonic())

    def _restart_client(self) -> None:
        """Purge the stuck client, then re-send what it held through a new one.

        A purged in-flight ticket may have been written already: the topic then holds it
        twice, which the jobs store once (they deduplicate on ticket_id)."""
        stuck, self._purged = self._producer, []
        try:
            stuck.purge(in_queue=True, in_flight=True, blocking=True)
            stuck.flush(_PURGE_SERVE_SECONDS)
            stuck.close()
            purged = self._purged
        finally:
            self._purged = None
        self._producer = self._new_client()
        self.counters.client_restarts += 1
        for key, value in purged:
            while True:
                try:
                    self._producer.produce(self.settings.topic, value, key)
                    break
                except BufferError:
                    self._producer.poll(_FULL_QUEUE_WAIT_SECONDS)
        logger.info("re-sent %d ticket(s) through a new Kafka client", len(purged))

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.counters.acknowledged += 1
            if self._ledger:
                self._ledger.write(ticket_id_of(message.value()) + "\n")
            return
        if self._purged is not None and error.code() in _PURGED:
            self._purged.append((message.key(), message.value()))
            return
        self.counters.failed += 1
        name = error.name()
        self.counters.errors[name] = self.counters.errors.get(name, 0) + 1
        logger.error("delivery failed: %s", error)

    def _count_acknowledged(self) -> None:
        """Without per-ticket reports, acknowledged = sent - failed - not yet reported."""
        if not self._track:
            in_queue = len(self._producer)
            self.counters.acknowledged = max(self.counters.sent - self.counters.failed - in_queue, 0)

    def _flush(self) -> None:
        """Wait up to _FLUSH_TIMEOUT_SECONDS for what is queued, still watching for a stall."""
        deadline = time.monotonic() + _FLUSH_TIMEOUT_SECONDS
        pending = len(self._producer)
        while pending and (left := deadline - time.monotonic()) > 0:
            pending = self._producer.flush(min(left, _STALL_CHECK_SECONDS))
            self._watch_for_stall(time.monotonic())
            pending = len(self._producer)
        if pending:
            logger.error("%d ticket(s) still undelivered after %ss flush", pending, _FLUSH_TIMEOUT_SECONDS)
        self._count_acknowledged()


def _log_progress(counters: Counters, rate: float) -> None:
    logger.info(
        "sent %d, acknowledged %d, failed %d, rate %.0f tickets/s",
        counters.sent,
        counters.acknowledged,
        counters.failed,
        rate,
    )


def _broker_answers(connection: KafkaConnection, topic: str) -> bool:
    """True when a fresh client gets the topic's metadata with a leader for every partition."""
    admin = admin_client(connection)
    try:
        found = admin.list_topics(topic, timeout=_PROBE_TIMEOUT_SECONDS).topics.get(topic)
    except KafkaException:
        return False
    return found is not None and found.error is None and all(p.leader >= 0 for p in found.partitions.values())


def _producer_config(connection: KafkaConnection, settings: ProducerSettings, on_delivery: Callable) -> dict:
    return client_config(
        connection,
        {
            "on_delivery": on_delivery,
            # Without a ledger, successful deliveries need no Python callback.
            "delivery.report.only.error": not settings.ledger_file,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": PRODUCER_BATCH_BYTES,
            "compression.type": "lz4",
            # Keep retrying through a broker outage rather than dropping tickets.
            "message.timeout.ms": 300_000,
            "error_cb": _on_kafka_error,
        },
    )


def _on_kafka_error(error: KafkaError) -> None:
    # Transient errors (broker down) are retried by librdkafka; they are only logged.
    logger.warning("kafka: %s", error)
