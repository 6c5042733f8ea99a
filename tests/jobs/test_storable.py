"""What the validation accepts, the real sink stores exactly; what it rejects, it keeps.

Records generated at the contract's edges (tests/core/strategies.py) go through the
enrichment job's own batch function, on real Spark and a real PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import decode_ticket
from jobs import enrichment
from jobs.metrics import JobMetrics
from tests.core.strategies import VALID_EDGES, records
from tests.jobs.test_pipeline import LETTER_COLUMNS, dead_letter, fetch, job_settings, stored_letter
from tests.jobs.test_validation import kafka_frame

pytestmark = pytest.mark.integration

_WRITERS: dict = {}


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
    spark, kafka_broker, topic, database_url, writer_url, tmp_path, batch
):
    """Generated records through the job's batch function: no refusal by PostgreSQL, each
    valid ticket stored as Python reads it (text byte for byte, the same instant), each
    invalid record in tickets_rejected with Python's reason and its bytes."""
    clear(database_url)
    batch = [*batch, *VALID_EDGES.values()]
    if writer_url not in _WRITERS:  # one per test: each keeps its connection open
        settings_ = job_settings(enrichment, kafka_broker.bootstrap_servers, topic, writer_url, tmp_path)
        _WRITERS[writer_url] = enrichment.batch_writer(settings_, JobMetrics("enrichment"))
    write = _WRITERS[writer_url]
    write(enrichment.enrich(kafka_frame(spark, batch)), 0)
    assert_stored_exactly(database_url, batch)
    refused = "SELECT count(*) FROM tickets_rejected WHERE reason LIKE 'refused by PostgreSQL%%'"
    assert fetch(database_url, refused) == [(0,)]
