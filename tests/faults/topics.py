"""The fault tests' topics: a new one, and an audit of the ticket ids written to one."""

from __future__ import annotations

import json
import time
from collections import Counter

from confluent_kafka import Consumer, TopicPartition

from core.kafka import KafkaConnection, admin_client, client_config
from producer.topic import ensure_topic

__all__ = ["new_topic", "topic_ticket_ids"]


def topic_ticket_ids(kafka: KafkaConnection, topic: str, timeout_seconds: float = 60) -> Counter[str]:
    """How many times each ticket_id was written to the topic (resends included)."""
    consumer = Consumer(
        client_config(
            kafka,
            {
                "group.id": f"faults-audit-{time.monotonic_ns()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            },
        )
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        seen: Counter[str] = Counter()
        done: set[int] = set()
        deadline = time.monotonic() + timeout_seconds
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error():
                    continue
                try:
                    seen[json.loads(message.value())["ticket_id"]] += 1
                except (ValueError, TypeError, KeyError):
                    seen["<not a ticket>"] += 1
                if message.offset() >= ends[message.partition()] - 1:
                    done.add(message.partition())
        return seen
    finally:
        consumer.close()


def new_topic(kafka: KafkaConnection, name: str, partitions: int = 3) -> str:
    """A new topic, configured as the topic Job creates it."""
    assert ensure_topic(admin_client(kafka), name, partitions, 30)
    return name
