"""The dashboard's lag: records of the topic a consumer group has not committed, read without
joining the group, on a real broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from core.kafka import admin_client, client_config
from dashboard.lag import LagReader
from tests.jobs.test_pipeline import produce

pytestmark = pytest.mark.integration


def test_the_lag_of_each_group_is_what_it_has_not_committed(kafka_connection, topic) -> None:
    """A group that never committed lags by every record; one that committed part of each
    partition lags by the rest; the reader neither joins a group nor commits for it."""
    produce(kafka_connection, topic, [(f"key-{n}".encode(), b"{}") for n in range(90)])
    idle, working = f"idle-{uuid.uuid4().hex[:8]}", f"working-{uuid.uuid4().hex[:8]}"
    reader = LagReader(kafka_connection, topic, timeout_seconds=10)

    # Two groups the broker has never seen. Through the admin client, such a first request could
    # crash the process while the broker's offsets topic was still loading (see LagReader).
    assert reader.read([idle, working]) == {idle: 90, working: 90}

    committer = Consumer(client_config(kafka_connection, {"group.id": working, "enable.auto.commit": False}))
    try:
        ends = {p: committer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)}
        assert sum(ends.values()) == 90
        done = {p: end // 2 for p, end in ends.items()}
        committer.commit(offsets=[TopicPartition(topic, p, o) for p, o in done.items()], asynchronous=False)
    finally:
        committer.close()

    remaining = sum(ends[p] - done[p] for p in ends)
    assert reader.read([idle, working]) == {idle: 90, working: remaining}
    # Reading committed nothing for the idle group, and joined neither group.
    assert reader.read([idle]) == {idle: 90}
    admin = admin_client(kafka_connection)
    for group, description in admin.describe_consumer_groups([idle, working]).items():
        assert description.result(10).members == [], group
