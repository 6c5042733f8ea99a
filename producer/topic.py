"""Create the tickets topic, or add partitions up to the wanted count: `python -m producer.topic`.

The topic is created with core.contract.TOPIC_CONFIG: max.message.bytes, and the broker's
append time as each record's timestamp (message.timestamp.type=LogAppendTime). An existing
topic keeps its configuration, but for the timestamp type, which this sets to LogAppendTime
(the records already in it keep theirs): with CreateTime, whoever may produce could replace
a stored ticket by resending its id with an older timestamp.

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
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from core.contract import TOPIC_CONFIG, TOPIC_TIMESTAMP_TYPE
from core.kafka import BrokerUnavailable, KafkaConnection, admin_client, wait_for_broker
from core.logs import configure_logging
from core.settings import load_or_exit
from producer.settings import TopicSettings

__all__ = [
    "PartitionChange",
    "TopicError",
    "ensure_broker_timestamps",
    "ensure_partitions",
    "ensure_topic",
    "main",
    "wait_for_settings_broker",
]

logger = logging.getLogger("producer.topic")

# Single-node brokers (Redpanda of the chart, the embedded Kafka) cannot hold more replicas.
_REPLICATION_FACTOR = 1
_TIMEOUT_SETTING = "--connect-timeout-seconds / KAFKA_CONNECT_TIMEOUT_SECONDS"


class TopicError(RuntimeError):
    """The broker refused to create the topic or to add partitions to it."""


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


def wait_for_settings_broker(settings: TopicSettings, connection: KafkaConnection) -> ClusterMetadata:
    """Wait up to the connect timeout for the broker; BrokerUnavailable names both settings."""
    return wait_for_broker(connection, settings.connect_timeout_seconds, timeout_setting=_TIMEOUT_SETTING)


def ensure_topic(admin: AdminClient, topic: str, partitions: int, timeout_seconds: float) -> bool:
    """Create the topic unless it exists; return True if this call created it.

    The broker is expected to answer: wait for it first (wait_for_settings_broker)."""
    if topic in _metadata(admin, timeout_seconds).topics:
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


def ensure_broker_timestamps(admin: AdminClient, topic: str, timeout_seconds: float) -> str | None:
    """Set the topic's message.timestamp.type to LogAppendTime unless it has it; return the
    type it had, None if it had LogAppendTime already. TopicError if the broker refuses."""
    name, wanted = TOPIC_TIMESTAMP_TYPE
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        described = admin.describe_configs([resource], request_timeout=timeout_seconds)
        entry = next(iter(described.values())).result(timeout=timeout_seconds).get(name)
        current = entry.value if entry else None
        if current == wanted:
            return None
        change = ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[ConfigEntry(name, wanted, incremental_operation=AlterConfigOpType.SET)],
        )
        altered = admin.incremental_alter_configs([change], request_timeout=timeout_seconds)
        next(iter(altered.values())).result(timeout=timeout_seconds)
    except (KafkaException, concurrent.futures.TimeoutError) as e:
        raise TopicError(
            f"cannot set {name}={wanted} on topic {topic}: {e}. Set it on the broker yourself"
            " (kafka-configs --alter --entity-type topics, or rpk topic alter-config)"
        ) from e
    return current or "unknown"


def _create(admin: AdminClient, topic: str, partitions: int, timeout_seconds: float) -> bool:
    """Create the topic; False if it appeared meanwhile (another run, a producer's auto-create)."""
    new = NewTopic(
        topic, num_partitions=partitions, replication_factor=_REPLICATION_FACTOR, config=dict(TOPIC_CONFIG)
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


def _metadata(admin: AdminClient, timeout_seconds: float) -> ClusterMetadata:
    """The cluster's metadata; TopicError if the broker stops answering meanwhile."""
    try:
        return admin.list_topics(timeout=timeout_seconds)
    except KafkaException as e:
        raise TopicError(f"no metadata from the broker within {timeout_seconds:g}s: {e}") from e


def _partition_count(admin: AdminClient, topic: str, timeout_seconds: float) -> int:
    found = _metadata(admin, timeout_seconds).topics.get(topic)
    if found is None:
        raise TopicError(f"topic {topic} disappeared while it was being checked")
    return len(found.partitions)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_or_exit(TopicSettings, argv, "python -m producer.topic", logger)
    connection = KafkaConnection.from_settings(settings)
    admin = admin_client(connection)
    try:
        wait_for_settings_broker(settings, connection)
        change = ensure_partitions(
            admin, settings.topic, settings.partitions, settings.connect_timeout_seconds
        )
        # A topic made just now has TOPIC_CONFIG (and its metadata may still be on its way).
        created = change.before is None
        had = (
            None
            if created
            else ensure_broker_timestamps(admin, settings.topic, settings.connect_timeout_seconds)
        )
    except BrokerUnavailable as e:
        logger.error("%s", e)
        return 1
    except TopicError as e:
        logger.error("%s (at %s)", e, settings.bootstrap_servers)
        return 1
    if had:
        logger.warning(
            "topic %s had message.timestamp.type=%s: now LogAppendTime, for the records appended from now on",
            settings.topic,
            had,
        )
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
