"""The staged sink's protocol on a real PostgreSQL: what the driver's commit makes visible.

Tasks are played by Stagers on their own connections, as the executors' writes run (the
Arrow batches are the enrichment's rows); `commit` and `abort` are the writer's own, called
as Spark calls them on the driver. End to end, through Spark, the jobs' tests cover the rest.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg2
import pyarrow as pa
import pytest

from core.contract import LINEAGE_NAMES, TABLES, team_for
from core.kafka import KafkaConnection
from jobs.batch_outcomes import BatchOutcome, OutcomeChannel
from jobs.dead_letters import RecordReader
from jobs.staged_sink import SinkOptions, StagedPart, StagedWriter, Stager, StagingLost
from jobs.tickets_sink import STORED_COLUMNS, TicketsPlan
from producer.generator import TicketGenerator
from tests.jobs.test_pipeline import fetch

pytestmark = pytest.mark.integration


def ticket_rows(tickets: list[dict], first_offset: int = 0) -> pa.Table:
    """Valid tickets as the enrichment's tasks stage them (tickets_sink.split)."""
    now = datetime.now(UTC)
    columns = {name: [] for name in STORED_COLUMNS}
    for offset, ticket in enumerate(tickets, start=first_offset):
        row = {
            **ticket,
            "created_at": datetime.fromisoformat(ticket["created_at"]),
            "team": team_for(ticket["type"]),
            **dict(zip(LINEAGE_NAMES, ("client_tickets", 0, offset, now), strict=True)),
            "enriched_at": now,
        }
        for name in STORED_COLUMNS:
            columns[name].append(row[name])
    table = pa.table(columns)
    return table.set_column(
        table.schema.get_field_index("kafka_partition"),
        "kafka_partition",
        pa.array(columns["kafka_partition"], pa.int32()),
    )


def stage(writer_url: str, query_id: str, batch_id: int, rows: pa.Table) -> StagedPart:
    """One task: stage `rows` on a connection of its own and commit; return its part."""
    part = StagedPart(query_id=query_id, batch_id=batch_id, writer=f"0-0-{uuid.uuid4().hex[:12]}")
    conn = psycopg2.connect(writer_url)
    with conn.cursor() as cur:
        stager = Stager(cur, part, options(writer_url), RecordReader(KafkaConnection("127.0.0.1:1")))
        assert stager.stage(TABLES.tickets_staged, rows) == []
    conn.commit()
    conn.close()
    part.staged = dict(stager.staged)
    part.read = rows.num_rows
    part.valid_by_type = {"incident": rows.num_rows}
    return part


def options(writer_url: str, socket: str = "") -> SinkOptions:
    return SinkOptions(
        database_url=writer_url,
        topic="client_tickets",
        bootstrap_servers="127.0.0.1:1",
        retry_seconds=5,
        statement_timeout_seconds=30,
        outcomes_socket=socket,
    )


def incidents(count: int, seed: int) -> list[dict]:
    generator = TicketGenerator(seed=seed)
    return [{**generator.ticket(), "type": "incident"} for _ in range(count)]


def test_a_committed_batch_is_visible_once_and_its_replay_changes_nothing(writer_url, database_url):
    """Two tasks stage a batch; the commit moves both parts to `tickets`, records the batch id
    and empties the staging table. The same batch staged and committed again (a replay after a
    crash before Spark's checkpoint) stores nothing and is reported as a replay."""
    outcomes: list[BatchOutcome] = []
    channel = OutcomeChannel(outcomes.append)
    try:
        writer = StagedWriter(TicketsPlan(), options(writer_url, channel.path))
        query_id, tickets = str(uuid.uuid4()), incidents(30, seed=41)
        for attempt in range(2):
            parts = [
                stage(writer_url, query_id, 7, ticket_rows(tickets[:20])),
                stage(writer_url, query_id, 7, ticket_rows(tickets[20:], first_offset=20)),
            ]
            writer.commit(parts, 7)
            assert fetch(database_url, "SELECT count(*) FROM tickets") == [(30,)], attempt
            assert fetch(database_url, f"SELECT count(*) FROM {TABLES.tickets_staged}") == [(0,)]
    finally:
        channel.close()
    assert fetch(
        database_url, f"SELECT batch_id FROM {TABLES.sink_commits} WHERE query_id = %s", (query_id,)
    ) == [(7,)]
    first, replay = outcomes
    assert (first.replayed, first.new, first.already_stored, sum(first.latency_counts)) == (False, 30, 0, 30)
    assert (replay.replayed, replay.new, replay.already_stored) == (True, 0, 30)


def test_only_the_parts_of_the_tasks_that_succeeded_are_moved(writer_url, database_url):
    """Rows staged by a task attempt that failed (its part never reached the driver) stay out
    of `tickets`, and the commit empties the staging table of them too."""
    writer = StagedWriter(TicketsPlan(), options(writer_url))
    query_id, tickets = str(uuid.uuid4()), incidents(10, seed=42)
    stage(writer_url, query_id, 0, ticket_rows(tickets[:5]))  # a failed attempt's rows
    succeeded = stage(writer_url, query_id, 0, ticket_rows(tickets[5:], first_offset=5))
    writer.commit([succeeded], 0)
    stored = {row[0] for row in fetch(database_url, "SELECT ticket_id::text FROM tickets")}
    assert stored == {t["ticket_id"] for t in tickets[5:]}
    assert fetch(database_url, f"SELECT count(*) FROM {TABLES.tickets_staged}") == [(0,)]


def test_staged_rows_missing_at_commit_fail_the_batch_and_abort_removes_the_rest(writer_url, database_url):
    """If staged rows are gone at commit (PostgreSQL restarted after a crash empties UNLOGGED
    tables), the commit fails and stores nothing, so that Spark runs the batch again; abort
    then deletes what the batch staged."""
    writer = StagedWriter(TicketsPlan(), options(writer_url))
    query_id = str(uuid.uuid4())
    part = stage(writer_url, query_id, 3, ticket_rows(incidents(8, seed=43)))
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"DELETE FROM {TABLES.tickets_staged} WHERE row_number < 3")
    conn.close()
    with pytest.raises(StagingLost, match="missing at commit"):
        writer.commit([part], 3)
    assert fetch(database_url, "SELECT count(*) FROM tickets") == [(0,)]
    assert fetch(database_url, f"SELECT count(*) FROM {TABLES.sink_commits}") == [(0,)]
    writer.abort([part, None], 3)
    assert fetch(database_url, f"SELECT count(*) FROM {TABLES.tickets_staged}") == [(0,)]
