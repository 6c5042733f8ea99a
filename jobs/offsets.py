"""Commits each finished micro-batch's Kafka offsets to a consumer group, for visibility.

Spark keeps its offsets in the checkpoint and never commits them to Kafka, so Kafka
tools (Redpanda Console, kafka-consumer-groups, rpk, lag exporters) see no consumer
for the jobs. After each batch we commit the batch's end offsets to a named group.
The checkpoint stays the source of truth for where a job resumes; the group is only
a mirror of it, so a failed commit is logged and never stops the job.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.kafka import KafkaConnection, client_config

__all__ = ["OffsetCommitter", "parse_end_offsets"]

logger = logging.getLogger(__name__)

# While the broker is down librdkafka reports each failed reconnect; one line per this
# many seconds is enough (the count of the ones left out is given).
_ERROR_LOG_INTERVAL_SECONDS = 30.0


def parse_end_offsets(end_offset: dict | None) -> list[TopicPartition]:
    """Spark's source endOffset of a progress event ({"topic": {"0": 42}}) as TopicPartitions."""
    if not end_offset:
        return []
    return [
        TopicPartition(topic, int(partition), int(offset))
        for topic, partitions in end_offset.items()
        for partition, offset in partitions.items()
    ]


class OffsetCommitter:
    """Commits offsets on its own thread, so the listener that submits them never blocks."""

    def __init__(self, connection: KafkaConnection, group_id: str) -> None:
        self.group_id = group_id
        self._consumer = Consumer(
            client_config(
                connection,
                {
                    "group.id": group_id,
                    "enable.auto.commit": False,
                    # Errors reach error_cb, rate-limited; librdkafka's own log stays quiet.
                    "log_level": 2,
                    "error_cb": self._on_error,
                },
            )
        )
        self._last_error_logged = float("-inf")
        self._errors_not_logged = 0
        self._pending: queue.Queue[list[TopicPartition] | None] = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, name=f"commit-{group_id}", daemon=True)
        self._thread.start()

    def submit(self, offsets: list[TopicPartition]) -> None:
        """Queue offsets for commit; when the queue is full the oldest are superseded anyway."""
        if not offsets:
            return
        try:
            self._pending.put_nowait(offsets)
        except queue.Full:
            logger.warning("offset commits for %s are falling behind; skipping one", self.group_id)

    def close(self, timeout_seconds: float = 10) -> None:
        """Commit what is queued, then close the consumer."""
        self._pending.put(None)
        self._thread.join(timeout_seconds)

    def _on_error(self, error) -> None:
        now = time.monotonic()
        if now - self._last_error_logged < _ERROR_LOG_INTERVAL_SECONDS:
            self._errors_not_logged += 1
            return
        more = f" ({self._errors_not_logged} more since the last one)" if self._errors_not_logged else ""
        logger.warning("offset commits to group %s: kafka: %s%s", self.group_id, error, more)
        self._last_error_logged, self._errors_not_logged = now, 0

    def _run(self) -> None:
        while (offsets := self._pending.get()) is not None:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                logger.warning("could not commit offsets to group %s: %s", self.group_id, e)
        self._consumer.close()
