"""The sink's last line of defence: rows that PostgreSQL refuses become dead letters.

Real PostgreSQL, real Kafka and real Spark. A refusal that the contract did not foresee
is made by the database itself: a CHECK that the test adds, or values that only a bug
upstream of the sink could hand it (NUL in a text, year 0).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import psycopg2
import pyarrow as pa
import pytest

from core.contract import TABLES
from jobs.postgres_sink import REFUSAL_REASON_CHARS, insert_tickets, write_isolating
from producer.generator import TicketGenerator, encode
from tests.jobs.test_pipeline import (
    AGGREGATION_COUNTS,
    LETTER_COLUMNS,
    dead_letter,
    fetch,
    produce,
    run_both_jobs,
    stored_letter,
)

pytestmark = pytest.mark.integration

YEAR_0 = -62_167_219_200_000_000  # 0000-01-01T00:00:00Z in microseconds


def ticket_rows(tickets: list[dict], micros: list[int]) -> pa.Table:
    """Rows shaped as the enrichment job writes them into `tickets`, created at `micros`."""
    now = datetime(2026, 12, 2, tzinfo=UTC)
    return pa.table(
        {
            "ticket_id": [t["ticket_id"] for t in tickets],
            "client_id": [t["client_id"] for t in tickets],
            "created_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "request": [t["request"] for t in tickets],
            "type": [t["type"] for t in tickets],
            "priority": [t["priority"] for t in tickets],
            "team": [t.get("team", "Support Technique") for t in tickets],
            "kafka_topic": ["client_tickets"] * len(tickets),
            "kafka_partition": pa.array([0] * len(tickets), pa.int32()),
            "kafka_offset": pa.array(range(len(tickets)), pa.int64()),
            "kafka_timestamp": pa.array([now] * len(tickets), pa.timestamp("us", tz="UTC")),
            "enriched_at": pa.array([now] * len(tickets), pa.timestamp("us", tz="UTC")),
        }
    )


def test_refused_rows_are_isolated_and_the_others_stored_in_one_transaction(database_url):
    """A check violation, a NUL in a text and year 0 in a batch of 9: the 6 others are
    stored, each refused row is named with its SQLSTATE, and a replay changes nothing."""
    generator = TicketGenerator(seed=21)
    tickets = [{**generator.ticket(), "type": "incident"} for _ in range(9)]
    tickets[2]["team"] = "Nobody"
    tickets[4]["request"] = "avant\x00après"
    micros = [int(datetime.fromisoformat(t["created_at"]).timestamp() * 1_000_000) for t in tickets]
    micros[7] = YEAR_0
    rows = ticket_rows(tickets, micros)

    for attempt in range(2):
        with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
            parts, refused = write_isolating(cur, rows, insert_tickets)
        conn.close()
        assert [r.index for r in refused] == [2, 4, 7]
        codes = [r.reason.split()[3] for r in refused]
        assert codes[0] == "23514"
        assert codes[1].startswith("22") and codes[2] == "22008"
        assert all(r.reason.startswith("refused by PostgreSQL: ") for r in refused)
        assert all(len(r.reason) <= REFUSAL_REASON_CHARS for r in refused)
        assert sum(p.inserted for p in parts) == (6 if attempt == 0 else 0)
    stored = {row[0] for row in fetch(database_url, "SELECT ticket_id::text FROM tickets")}
    assert stored == {t["ticket_id"] for i, t in enumerate(tickets) if i not in (2, 4, 7)}


def test_a_ticket_the_database_refuses_becomes_a_dead_letter_and_the_jobs_go_on(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """A valid ticket that PostgreSQL refuses (here a CHECK added to both jobs' tables) in
    the middle of a batch: both jobs commit, the refused ticket is in tickets_rejected
    once with its raw bytes from Kafka, every other ticket is stored and counted, and a
    full replay from a new checkpoint changes nothing."""
    generator = TicketGenerator(clients=20, seed=22)
    tickets = [generator.ticket() for _ in range(120)]
    doomed = tickets[60]
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        for table in (TABLES.tickets, TABLES.aggregation_seen):
            cur.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT not_this_one CHECK (ticket_id <> %s::uuid)",
                (doomed["ticket_id"],),
            )
    conn.close()
    records = [(t["client_id"].encode(), encode(t)) for t in tickets]
    produce(kafka_connection, topic, records)

    for _ in range(2):
        run_both_jobs(spark, kafka_connection, topic, writer_url, tmp_path)
        stored = {row[0] for row in fetch(database_url, "SELECT ticket_id::text FROM tickets")}
        assert stored == {t["ticket_id"] for t in tickets} - {doomed["ticket_id"]}
        letters = fetch(database_url, f"SELECT reason, raw_key, {LETTER_COLUMNS} FROM tickets_rejected")
        assert len(letters) == 1
        reason, key, *value = letters[0]
        assert reason.startswith("refused by PostgreSQL: 23514 ")
        assert "not_this_one" in reason
        assert bytes(key) == doomed["client_id"].encode()
        assert stored_letter(reason, *value) == dead_letter(reason, encode(doomed))
        counts = dict(fetch(database_url, AGGREGATION_COUNTS))
        assert counts == dict(fetch(database_url, "SELECT type, count(*) FROM tickets GROUP BY type"))
        shutil.rmtree(tmp_path / "enrichment")
        shutil.rmtree(tmp_path / "aggregation")
