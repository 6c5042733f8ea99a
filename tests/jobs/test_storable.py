"""What the validation accepts, the real sink stores exactly; what it rejects, it keeps.

Records generated at the contract's edges (tests/core/strategies.py) go through the
enrichment job's own query and sink, on a real broker, real Spark and a real PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg2
import pytest
from confluent_kafka.admin import NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import decode_ticket
from core.kafka import admin_client
from jobs import enrichment
from tests.core.strategies import VALID_EDGES, records
from tests.jobs.test_pipeline import LETTER_COLUMNS, dead_letter, fetch, produce, run_job, stored_letter

pytestmark = pytest.mark.integration


def clear(database_url: str) -> None:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE tickets, tickets_rejected")
    conn.close()


def assert_stored_exactly(database_url: str, batch: list[bytes | None]) -> None:
    """Each valid record's fields as Python reads them; each rejected one with its reason, its
    value's preview, size and sha-256."""
    expected, rejected = {}, {}
    for offset, raw in enumerate(batch):
        ticket, reason = decode_ticket(raw)
        if reason is None:
            expected.setdefault(ticket["ticket_id"], {**ticket, "kafka_offset": offset})
        else:
            rejected[offset] = dead_letter(reason, raw)
    stored = fetch(
        database_url,
        "SELECT ticket_id::text, client_id, created_at, request, type, priority, kafka_offset FROM tickets",
    )
    assert {row[0]: row for row in stored} == {
        t["ticket_id"]: (
            t["ticket_id"],
            t["client_id"],
            datetime.fromisoformat(t["created_at"]),
            t["request"],
            t["type"],
            t["priority"],
            t["kafka_offset"],
        )
        for t in expected.values()
    }
    letters = fetch(database_url, f"SELECT kafka_offset, reason, {LETTER_COLUMNS} FROM tickets_rejected")
    assert {offset: stored_letter(*letter) for offset, *letter in letters} == rejected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records(), min_size=1, max_size=30))
def test_every_accepted_record_is_stored_exactly_and_every_rejected_one_kept(
    spark, kafka_connection, database_url, writer_url, tmp_path, batch
):
    """Generated records through the enrichment job's query and sink: no refusal by
    PostgreSQL, each valid ticket stored as Python reads it (text byte for byte, the same
    instant), each invalid record in tickets_rejected with Python's reason and its bytes."""
    clear(database_url)
    batch = [*batch, *VALID_EDGES.values()]
    # A topic of one partition per example, so that each record's offset is its index.
    topic = f"storable_{uuid.uuid4().hex[:10]}"
    admin = admin_client(kafka_connection)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    produce(kafka_connection, topic, [(b"k", value) for value in batch])
    run_job(spark, enrichment, kafka_connection, topic, writer_url, tmp_path / topic)
    admin.delete_topics([topic])[topic].result(30)
    assert_stored_exactly(database_url, batch)
    refused = "SELECT count(*) FROM tickets_rejected WHERE reason LIKE 'refused by PostgreSQL%%'"
    assert fetch(database_url, refused) == [(0,)]
