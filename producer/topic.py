"""Create the tickets topic, or add partitions up to the wanted count: `python -m producer.topic`.

The topic is created with max.message.bytes = core.contract.TOPIC_MAX_MESSAGE_BYTES;
an existing topic's configuration is left as it is.

The Helm chart's topic Job runs this against the chart's broker, its Redpanda or the
external one of `externalKafka.bootstrapServers`. It speaks only the Kafka API, so any
Kafka-compatible broker will do. It is idempotent and never removes a partition (Kafka
cannot). A topic with enough partitions is left as it is.

Exit status: 0 done, 1 broker error (unreachable within the connect timeout, or a refusal),
2 bad setting. Flags and environment variables: `python -m producer.topic --help`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import time
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewPartitions, NewTopic

from core.contract import TOPIC_MAX_MESSAGE_BYTES
from core.logs import configure_logging
from core.settings import load_or_exit
from producer.settings import TopicSettings

__all__ = [
    "BrokerUnavailable",
    "PartitionChange",
    "TopicError",
    "ensure_partitions",
    "ensure_topic",
    "main",
    "unreachable_message",
    "wait_for_broker",
]

logger = logging.getLogger("producer.topic")

# Single-node brokers (Redpanda of the chart, the embedded Kafka) cannot hold more replicas.
_REPLICATION_FACTOR = 1
_RETRY_SECONDS = 1.0


class TopicError(RuntimeError):
    """The broker refused to create the topic or to add partitions to it."""


class BrokerUnavailable(TopicError):
    """The Kafka broker could not be reached within the connect timeout."""


class PartitionChange(NamedTuple):
    """Partitions of the topic before (None: it did not exist) and after a run."""

    before: int | None
    after: int

    def describe(self) -> str:
        if self.before is None:
            return "created"
        if self.after > self.before:
            return f"grown from {self.before}"
        return "left as it was"


def wait_for_broker(admin: AdminClient, timeout_seconds: float) -> ClusterMetadata:
    """Return the cluster's metadata once the broker answers; BrokerUnavailable after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as e:
            # A refused connection may fail at once: retry until the whole timeout has passed.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerUnavailable(str(e)) from e
        time.sleep(min(_RETRY_SECONDS, remaining))


def ensure_topic(admin: AdminClient, topic: str, partitions: int, timeout_seconds: float) -> bool:
    """Create the topic unless it exists; return True if this call created it."""
    if topic in wait_for_broker(admin, timeout_seconds).topics:
        return False
    return _create(admin, topic, partitions, timeout_seconds)


def ensure_partitions(
    admin: AdminClient, topic: str, partitions: int, timeout_seconds: float
) -> PartitionChange:
    """Create ``topic`` with ``partitions``, or add partitions up to that count; never remove any."""
    if ensure_topic(admin, topic, partitions, timeout_seconds):
        return PartitionChange(None, partitions)
    before = _partition_count(admin, topic, timeout_seconds)
    if before >= partitions:
        return PartitionChange(before, before)
    futures = admin.create_partitions([NewPartitions(topic, partitions)], request_timeout=timeout_seconds)
    try:
        futures[topic].result(timeout=timeout_seconds)
    except (KafkaException, concurrent.futures.TimeoutError) as e:
        # A concurrent run may have grown it meanwhile (INVALID_PARTITIONS): enough partitions is success.
        now = _partition_count(admin, topic, timeout_seconds)
        if now < partitions:
            raise TopicError(
                f"cannot grow topic {topic} from {before} to {partitions} partitions: {e}"
            ) from e
        return PartitionChange(before, now)
    return PartitionChange(before, partitions)


def unreachable_message(settings: TopicSettings, error: Exception) -> str:
    """The error of an unreachable broker, naming the settings to check."""
    return (
        f"Kafka broker unreachable at --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS="
        f"{settings.bootstrap_servers} after {settings.connect_timeout_seconds:g}s"
        f" (--connect-timeout-seconds / KAFKA_CONNECT_TIMEOUT_SECONDS): {error}"
    )


def _create(admin: AdminClient, topic: str, partitions: int, timeout_seconds: float) -> bool:
    """Create the topic; False if it appeared meanwhile (another run, a producer's auto-create)."""
    new = NewTopic(
        topic,
        num_partitions=partitions,
        replication_factor=_REPLICATION_FACTOR,
        config={"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)},
    )
    futures = admin.create_topics([new], request_timeout=timeout_seconds)
    try:
        futures[topic].result(timeout=timeout_seconds)
    except KafkaException as e:
        if e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise TopicError(f"cannot create topic {topic} with {partitions} partitions: {e}") from e
    except concurrent.futures.TimeoutError as e:
        raise TopicError(f"no answer to the creation of topic {topic} within {timeout_seconds:g}s") from e
    return True


def _partition_count(admin: AdminClient, topic: str, timeout_seconds: float) -> int:
    found = wait_for_broker(admin, timeout_seconds).topics.get(topic)
    if found is None:
        raise TopicError(f"topic {topic} disappeared while it was being checked")
    return len(found.partitions)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_or_exit(TopicSettings, argv, "python -m producer.topic", logger)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 0})
    try:
        change = ensure_partitions(
            admin, settings.topic, settings.partitions, settings.connect_timeout_seconds
        )
    except BrokerUnavailable as e:
        logger.error("%s", unreachable_message(settings, e))
        return 1
    except TopicError as e:
        logger.error("%s (at %s)", e, settings.bootstrap_servers)
        return 1
    logger.info(
        "topic %s at %s has %d partitions (wanted %d): %s",
        settings.topic,
        settings.bootstrap_servers,
        change.after,
        settings.partitions,
        change.describe(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
