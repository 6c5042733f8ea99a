"""How far each consumer group is behind the tickets topic, as the dashboard shows it."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from core.components import DASHBOARD
from core.kafka import Connectable, client_config

__all__ = ["LagReader"]


class LagReader:
    """Records of the topic each consumer group has not processed yet (end offsets minus
    committed ones). A consumer per group, kept for all refreshes, asks for its group's committed
    offsets without joining the group; one more reads the end offsets.

    Not the admin client's list_consumer_group_offsets: librdkafka crashes the whole process
    (SIGSEGV) when that request is answered NOT_COORDINATOR, as a group's first request to a new
    broker can be (confluentinc/librdkafka#5040, still in confluent-kafka 2.16.1). A consumer of
    the group handles that answer: it finds the coordinator again and retries.
    """

    def __init__(self, connection: Connectable, topic: str, timeout_seconds: float = 5) -> None:
        self._connection, self._topic, self._timeout = connection, topic, timeout_seconds
        self._probe = self._consumer(DASHBOARD.consumer_group)
        self._groups: dict[str, Consumer] = {}

    def _consumer(self, group: str) -> Consumer:
        # No subscribe and no assign: it never joins the group, never commits.
        return Consumer(
            client_config(self._connection, {"group.id": group, "enable.auto.commit": False, "log_level": 0})
        )

    def read(self, groups: list[str]) -> dict[str, int]:
        topic, timeout = self._topic, self._timeout
        partitions = [
            TopicPartition(topic, p)
            for p in self._probe.list_topics(topic, timeout=timeout).topics[topic].partitions
        ]
        ends = {tp.partition: self._probe.get_watermark_offsets(tp, timeout=timeout)[1] for tp in partitions}
        lag = {}
        for group in groups:
            if group not in self._groups:
                self._groups[group] = self._consumer(group)
            committed = self._groups[group].committed(partitions, timeout=timeout)
            done = {tp.partition: max(tp.offset, 0) for tp in committed}
            lag[group] = sum(max(end - done.get(p, 0), 0) for p, end in ends.items())
        return lag
