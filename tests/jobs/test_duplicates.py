"""A ticket_id sent again with other content, on another partition: both jobs keep one copy.

Spark reads partitions in no fixed order and each job cuts its own micro-batches, so
"the first copy read" differs between the jobs. Here the aggregation sees only the
later copy in one batch, while enrichment reads both copies in one batch; both must
end on the copy first by (kafka_timestamp, kafka_partition, kafka_offset).

The first tests choose each copy's timestamp, on a topic that keeps its producers'
(CreateTime, as a user's broker may). On the topic as we create it (LogAppendTime), the
broker stamps each copy: a resend that claims an older timestamp replaces nothing.
"""

from __future__ import annotations

import shutil
import time

import pytest
from confluent_kafka import Producer

from core.contract import TYPE_TEAMS
from core.kafka import KafkaConnection, client_config
from jobs import aggregation
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import AGGREGATION_COUNTS, fetch, run_both_jobs, run_job

pytestmark = pytest.mark.integration


def send(kafka: KafkaConnection, topic: str, copies: list[tuple[dict, int, int]]) -> None:
    """Send (ticket, partition, kafka timestamp in ms) records."""
    producer = Producer(client_config(kafka, {"enable.idempotence": True, "acks": "all"}))
    for ticket, partition, timestamp_ms in copies:
        producer.produce(
            topic,
            key=ticket["client_id"].encode(),
            value=encode(ticket),
            partition=partition,
            timestamp=timestamp_ms,
        )
    assert producer.flush(30) == 0


def two_copies(generator: TicketGenerator) -> tuple[dict, dict]:
    """Two tickets with one ticket_id and a different client, type and request."""
    first = generator.ticket()
    other = generator.ticket()
    while other["type"] == first["type"] or other["client_id"] == first["client_id"]:
        other = generator.ticket()
    other["ticket_id"] = first["ticket_id"]
    return first, other


def stored_copy(database_url: str, ticket_id: str) -> list[tuple]:
    return fetch(
        database_url,
        "SELECT client_id, type, team, request FROM tickets WHERE ticket_id = %s",
        (ticket_id,),
    )


def counted_type(database_url: str, ticket_id: str) -> list[tuple]:
    return fetch(database_url, "SELECT type FROM tickets_aggregation_seen WHERE ticket_id = %s", (ticket_id,))


def assert_counts_equal_group_by(database_url: str, expected_rows: int) -> None:
    counts = dict(fetch(database_url, AGGREGATION_COUNTS))
    group_by = dict(fetch(database_url, "SELECT type, count(*) FROM tickets GROUP BY type"))
    assert counts == group_by
    assert sum(group_by.values()) == expected_rows


def test_an_earlier_copy_read_later_wins_in_both_tables(
    spark, kafka_connection, create_time_topic, database_url, writer_url, tmp_path
):
    """Copy `late` (partition 1, timestamp T+5 s) is counted alone; copy `early`
    (partition 0, timestamp T) arrives next. Enrichment then reads both in one batch,
    the aggregation reads `early` in a later batch: both end on `early`."""
    kafka, topic = kafka_connection, create_time_topic
    generator = TicketGenerator(clients=40, seed=21)
    early, late = two_copies(generator)
    now_ms = int(time.time() * 1000)
    fillers = [generator.ticket() for _ in range(30)]

    send(kafka, topic, [(late, 1, now_ms + 5000)])
    run_job(spark, aggregation, kafka, topic, writer_url, tmp_path)
    assert counted_type(database_url, late["ticket_id"]) == [(late["type"],)]

    send(kafka, topic, [(early, 0, now_ms)] + [(t, i % 3, now_ms + 10 + i) for i, t in enumerate(fillers)])
    run_both_jobs(spark, kafka, topic, writer_url, tmp_path)

    expected = (early["client_id"], early["type"], TYPE_TEAMS[early["type"]], early["request"])
    assert stored_copy(database_url, early["ticket_id"]) == [expected]
    assert counted_type(database_url, early["ticket_id"]) == [(early["type"],)]
    assert_counts_equal_group_by(database_url, len(fillers) + 1)
    # The type the late copy was first counted under went back down by one.
    late_type_count = fetch(
        database_url, "SELECT ticket_count FROM tickets_aggregation WHERE type = %s", (late["type"],)
    )
    assert late_type_count == [(sum(t["type"] == late["type"] for t in fillers),)]


def test_a_stored_copy_is_replaced_only_by_a_winning_copy(
    spark, kafka_connection, create_time_topic, database_url, writer_url, tmp_path
):
    """Both jobs store `late` first; `early` replaces it in both tables; a copy later
    than `early`, and a replay of everything from a lost checkpoint, change nothing."""
    kafka, topic = kafka_connection, create_time_topic
    generator = TicketGenerator(clients=40, seed=22)
    early, late = two_copies(generator)
    _, later_still = two_copies(generator)
    later_still["ticket_id"] = early["ticket_id"]
    now_ms = int(time.time() * 1000)

    send(kafka, topic, [(late, 2, now_ms + 5000)])
    run_both_jobs(spark, kafka, topic, writer_url, tmp_path)
    assert [row[1] for row in stored_copy(database_url, late["ticket_id"])] == [late["type"]]

    send(kafka, topic, [(early, 1, now_ms)])
    run_both_jobs(spark, kafka, topic, writer_url, tmp_path)
    expected = [(early["client_id"], early["type"], TYPE_TEAMS[early["type"]], early["request"])]
    assert stored_copy(database_url, early["ticket_id"]) == expected
    assert counted_type(database_url, early["ticket_id"]) == [(early["type"],)]
    assert_counts_equal_group_by(database_url, 1)
    stored_at = fetch(database_url, "SELECT stored_at FROM tickets")

    send(kafka, topic, [(later_still, 0, now_ms + 9000)])
    for job in ("enrichment", "aggregation"):
        shutil.rmtree(tmp_path / job)  # a lost checkpoint: both jobs re-read every copy
    run_both_jobs(spark, kafka, topic, writer_url, tmp_path)
    assert stored_copy(database_url, early["ticket_id"]) == expected
    assert counted_type(database_url, early["ticket_id"]) == [(early["type"],)]
    assert fetch(database_url, "SELECT stored_at FROM tickets") == stored_at
    assert_counts_equal_group_by(database_url, 1)


def test_a_resend_claiming_an_older_timestamp_replaces_nothing(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """On the topic as the topic Job creates it, a stored ticket's id resent with other
    content and a timestamp a day older, on its own partition and on another, is stamped
    by the broker later than the original: both jobs keep the original."""
    generator = TicketGenerator(clients=40, seed=23)
    original, forged = two_copies(generator)
    _, forged_elsewhere = two_copies(generator)
    forged_elsewhere["ticket_id"] = original["ticket_id"]
    now_ms = int(time.time() * 1000)

    send(kafka_connection, topic, [(original, 0, now_ms)])
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    expected = [(original["client_id"], original["type"], TYPE_TEAMS[original["type"]], original["request"])]
    assert stored_copy(database_url, original["ticket_id"]) == expected

    day_ms = 24 * 3600 * 1000
    send(kafka_connection, topic, [(forged, 0, now_ms - day_ms), (forged_elsewhere, 2, now_ms - 2 * day_ms)])
    run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
    assert stored_copy(database_url, original["ticket_id"]) == expected
    assert counted_type(database_url, original["ticket_id"]) == [(original["type"],)]
    assert_counts_equal_group_by(database_url, 1)
    # The broker's time, not the claimed one, is what the lineage keeps.
    stamped = fetch(
        database_url, "SELECT kafka_timestamp >= to_timestamp(%s) FROM tickets", (now_ms / 1000 - 60,)
    )
    assert stamped == [(True,)]
