"""The same ticket_id arrives more than once: it is stored once and counted once.

A producer retry after a lost acknowledgement resends a ticket identically; a buggy or
replayed client may resend its ticket_id with other content. Both jobs keep the copy
first by (kafka_timestamp, kafka_partition, kafka_offset): here the first one sent.
tests/jobs/test_duplicates.py covers copies on other partitions, read out of order.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from core.kafka import KafkaConnection, client_config
from producer.generator import TicketGenerator, encode
from tests.faults.database import query
from tests.faults.end_state import assert_exact, report, wait_until_drained
from tests.faults.pipeline import Pipeline
from tests.faults.processes import log
from tests.faults.topics import topic_ticket_ids

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


def produce(
    kafka: KafkaConnection, topic: str, records: list[tuple[dict, int | None]]
) -> list[tuple[int, int]]:
    """Send tickets (to the given partition, or by key); return their (partition, offset)."""
    producer = Producer(client_config(kafka, {"enable.idempotence": True, "acks": "all"}))
    acks: list[tuple[int, int] | None] = [None] * len(records)

    def delivered(index: int, error, message) -> None:
        assert error is None, error
        acks[index] = (message.partition(), message.offset())

    for index, (ticket, partition) in enumerate(records):
        kwargs = {} if partition is None else {"partition": partition}
        producer.produce(
            topic,
            key=ticket["client_id"].encode(),
            value=encode(ticket),
            on_delivery=lambda error, message, index=index: delivered(index, error, message),
            **kwargs,
        )
    assert producer.flush(30) == 0
    assert None not in acks
    return acks


def test_a_ticket_id_sent_three_times_is_stored_once_and_counted_once(
    kafka_connection, postgres_server, topic, writer_url, tmp_path, fault_random, record_property
):
    """A ticket sent twice identically (same micro-batch), then once more with the same
    ticket_id but another client, request and type at a later offset (later micro-batch),
    is one row holding the first copy, counted once under the first copy's type."""
    started = time.monotonic()
    generator = TicketGenerator(clients=40, seed=fault_random.randrange(1 << 30))
    first = generator.ticket()
    later = generator.ticket()
    while later["type"] == first["type"] or later["client_id"] == first["client_id"]:
        later = generator.ticket()
    later["ticket_id"] = first["ticket_id"]
    fillers = [generator.ticket() for _ in range(200)]
    expected = [first["ticket_id"]] + [t["ticket_id"] for t in fillers]

    # All three copies on partition 0, so "later" has the greater offset.
    acks = produce(kafka_connection, topic, [(t, None) for t in fillers[:50]] + [(first, 0), (first, 0)])
    first_copy = acks[50]
    produce(kafka_connection, topic, [(t, None) for t in fillers[50:100]])

    pipeline = Pipeline(
        kafka=kafka_connection,
        topic=topic,
        database_url=writer_url,
        password=postgres_server.writer_password,
        work_dir=tmp_path,
    )
    # The expected ids, where the drain check reads the producer's ledger.
    pipeline.ledger.write_text("".join(f"{i}\n" for i in expected[:101]))
    try:
        pipeline.start_jobs()
        state = wait_until_drained(pipeline, expected[:101], timeout_seconds=180)
        assert state.drained, state
        log("first copies stored; now the later copy with the same ticket_id")
        produce(kafka_connection, topic, [(later, 0)] + [(t, None) for t in fillers[100:]])
        pipeline.ledger.write_text("".join(f"{i}\n" for i in expected))
        state = wait_until_drained(pipeline, expected, timeout_seconds=180)
        # Let both jobs read past the last offset a little longer: nothing may change.
        pipeline.sleep(3)
        state = wait_until_drained(pipeline, expected, timeout_seconds=30)
        codes = pipeline.stop_jobs()

        stored = query(
            writer_url,
            postgres_server.writer_password,
            "SELECT client_id, request, type, kafka_partition, kafka_offset FROM tickets"
            " WHERE ticket_id = %s",
            (first["ticket_id"],),
        )
        counted = query(
            writer_url,
            postgres_server.writer_password,
            "SELECT type FROM tickets_aggregation_seen WHERE ticket_id = %s",
            (first["ticket_id"],),
        )
        in_topic = topic_ticket_ids(kafka_connection, topic)
        report(
            record_property,
            "same ticket_id three times",
            state,
            started,
            copies_in_topic=in_topic[first["ticket_id"]],
            rows_for_the_id=len(stored),
            counted_for_the_id=len(counted),
        )
        assert in_topic[first["ticket_id"]] == 3
        assert len(stored) == 1, stored
        client_id, request, ticket_type, partition, offset = stored[0]
        assert (client_id, request, ticket_type) == (first["client_id"], first["request"], first["type"])
        assert (partition, offset) == first_copy
        assert counted == [(first["type"],)]
        assert_exact(state, pipeline)
        assert codes == {"enrichment": 0, "aggregation": 0}, pipeline.tails()
    finally:
        pipeline.close()
