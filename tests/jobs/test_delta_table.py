"""The Delta table of enriched tickets, written with delta-rs into real folders: its schema,
each ticket id once with PostgreSQL's winner, replayed batches skipped, compaction and vacuum.

These run without Spark: the batches are Arrow tables shaped as the enrichment's valid rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from core.contract import LINEAGE_NAMES, TYPE_TEAMS
from jobs.delta_table import PARTITION_COLUMN, TICKETS_SCHEMA, TableMismatch, TicketsTable, delta_rows
from jobs.tickets_sink import STORED_COLUMNS
from jobs.validation import TICKET_COLUMNS
from producer.generator import TicketGenerator

APP = "a-query-id"
ENRICHED_AT = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)
# The types of Spark's rows that are no strings (toArrow, in a session whose zone is UTC).
_ROW_TYPES = {
    "created_at": pa.timestamp("us", tz="UTC"),
    "kafka_partition": pa.int32(),
    "kafka_offset": pa.int64(),
    "kafka_timestamp": pa.timestamp("us", tz="UTC"),
}


def enriched(tickets: list[dict], positions: list[tuple[int, int, datetime | None]]) -> pa.Table:
    """The enrichment's valid rows (TICKET_COLUMNS and lineage, as Spark's toArrow gives
    them) of `tickets`, each at (partition, offset, kafka timestamp)."""
    rows = [
        {
            **ticket,
            "created_at": datetime.fromisoformat(ticket["created_at"]),
            "team": TYPE_TEAMS[ticket["type"]],
            "kafka_topic": "client_tickets",
            "kafka_partition": partition,
            "kafka_offset": offset,
            "kafka_timestamp": timestamp,
        }
        for ticket, (partition, offset, timestamp) in zip(tickets, positions, strict=True)
    ]
    schema = pa.schema(
        [pa.field(n, _ROW_TYPES.get(n, pa.string())) for n in (*TICKET_COLUMNS, *LINEAGE_NAMES)]
    )
    return pa.Table.from_pylist(rows, schema)


def in_order(tickets: list[dict], first_offset: int = 0) -> pa.Table:
    """`tickets` on partition 0 from `first_offset`, a second apart from T0."""
    return enriched(
        tickets,
        [(0, first_offset + i, T0 + timedelta(seconds=first_offset + i)) for i in range(len(tickets))],
    )


def stored(uri: Path) -> dict[str, dict]:
    """The table's rows by ticket_id, read by delta-rs's own Arrow reader."""
    rows = DeltaTable(str(uri)).to_pyarrow_table().to_pylist()
    by_id = {row["ticket_id"]: row for row in rows}
    assert len(by_id) == len(rows), "a ticket_id is stored more than once"
    return by_id


def test_the_schema_is_the_columns_of_tickets_with_utc_microseconds_and_a_day():
    """The table's columns are those the tickets sink stores, in its order, then the day of
    created_at; instants are UTC microseconds; only the Kafka timestamp may be missing."""
    assert TICKETS_SCHEMA.names == [*STORED_COLUMNS, PARTITION_COLUMN]
    instants = {f.name for f in TICKETS_SCHEMA if f.type == pa.timestamp("us", tz="UTC")}
    assert instants == {"created_at", "kafka_timestamp", "enriched_at"}
    assert [f.name for f in TICKETS_SCHEMA if f.nullable] == ["kafka_timestamp"]


def test_the_table_is_created_partitioned_by_day_and_holds_the_schema(tmp_path):
    """A new URI gets an empty table of the schema; each row lands in the folder of its UTC day,
    whatever zone the batch's timestamps came in."""
    uri = tmp_path / "tickets"
    table = TicketsTable(str(uri))
    assert DeltaTable(str(uri)).metadata().partition_columns == [PARTITION_COLUMN]
    ticket = TicketGenerator(clients=3, seed=1).ticket()
    ticket["created_at"] = "2026-05-02T01:30:00.000+02:00"  # 2026-05-01 23:30 UTC
    batch = in_order([ticket])
    paris = batch.set_column(2, "created_at", batch["created_at"].cast(pa.timestamp("us", tz="Europe/Paris")))
    table.write(paris, APP, 0, ENRICHED_AT)
    row = stored(uri)[ticket["ticket_id"]]
    assert row["created_at"] == datetime(2026, 5, 1, 23, 30, tzinfo=UTC)
    assert str(row[PARTITION_COLUMN]) == "2026-05-01"
    assert row["enriched_at"] == ENRICHED_AT
    assert [p.name for p in uri.iterdir() if p.name.startswith(PARTITION_COLUMN)] == [
        "created_date=2026-05-01"
    ]
    assert pa.schema(DeltaTable(str(uri)).schema().to_arrow()).equals(TICKETS_SCHEMA)


def test_a_ticket_sent_twice_is_stored_once_as_the_copy_postgresql_keeps(tmp_path):
    """In one batch or across batches, a ticket_id is stored once: the first copy by
    (kafka_timestamp, kafka_partition, kafka_offset), even when that copy comes in a later
    batch; a later copy replaces nothing."""
    uri = tmp_path / "tickets"
    table = TicketsTable(str(uri))
    generator = TicketGenerator(clients=10, seed=2)
    a, b, c = (generator.ticket() for _ in range(3))
    b_other = {**generator.ticket(), "ticket_id": b["ticket_id"]}
    c_earlier = {**generator.ticket(), "ticket_id": c["ticket_id"]}
    # Batch 0: a twice (the resend later), b, then b's other copy on partition 1 at the same time.
    first = table.write(
        enriched(
            [a, a, b, b_other, c],
            [(0, 0, T0), (0, 5, T0 + timedelta(seconds=9)), (0, 1, T0), (1, 0, T0), (0, 2, T0)],
        ),
        APP,
        0,
        ENRICHED_AT,
    )
    assert (first.tickets, first.inserted, first.replaced) == (3, 3, 0)
    # Batch 1: a resent again (later: loses), and a copy of c that the broker stamped earlier.
    second = table.write(
        enriched([a, c_earlier], [(2, 0, T0 + timedelta(seconds=20)), (2, 1, T0 - timedelta(seconds=1))]),
        APP,
        1,
        ENRICHED_AT,
    )
    assert (second.inserted, second.replaced) == (0, 1)
    rows = stored(uri)
    assert set(rows) == {a["ticket_id"], b["ticket_id"], c["ticket_id"]}
    assert (rows[a["ticket_id"]]["kafka_partition"], rows[a["ticket_id"]]["kafka_offset"]) == (0, 0)
    assert rows[b["ticket_id"]]["client_id"] == b["client_id"]
    assert rows[c["ticket_id"]]["client_id"] == c_earlier["client_id"]


def test_a_batch_the_query_already_committed_is_skipped(tmp_path):
    """Writing batch 3 again (a replay after a crash before Spark's checkpoint commit), or an
    earlier one, changes nothing and commits nothing; batch 4 is written; another query's
    batch 3 (a new checkpoint re-reading the topic) adds no ticket twice."""
    uri = tmp_path / "tickets"
    table = TicketsTable(str(uri))
    generator = TicketGenerator(clients=10, seed=3)
    batch = in_order([generator.ticket() for _ in range(20)])
    written = table.write(batch, APP, 3, ENRICHED_AT)
    assert (written.inserted, written.skipped) == (20, False)
    assert table.committed_batch(APP) == 3
    version = table.version()

    for replayed in (3, 2):
        again = table.write(batch, APP, replayed, ENRICHED_AT + timedelta(hours=1))
        assert again.skipped
        assert table.version() == version
    assert {row["enriched_at"] for row in stored(uri).values()} == {ENRICHED_AT}

    more = in_order([generator.ticket() for _ in range(5)], first_offset=20)
    assert table.write(more, APP, 4, ENRICHED_AT).inserted == 5
    reread = table.write(pa.concat_tables([batch, more]), "a-new-query-id", 3, ENRICHED_AT)
    assert (reread.inserted, reread.replaced, reread.skipped) == (0, 0, False)
    assert len(stored(uri)) == 25


def test_a_batch_that_changes_no_row_is_one_commit_all_the_same(tmp_path):
    """A batch of resent tickets only, or of no valid ticket, commits its transaction alone:
    each batch is one commit, and the table's version of the query is its last batch."""
    uri = tmp_path / "tickets"
    table = TicketsTable(str(uri))
    batch = in_order([TicketGenerator(clients=10, seed=6).ticket() for _ in range(3)])
    table.write(batch, APP, 0, ENRICHED_AT)
    for batch_id, tickets in ((1, batch), (2, batch.slice(0, 0))):
        version = table.version()
        written = table.write(tickets, APP, batch_id, ENRICHED_AT)
        assert (written.inserted, written.replaced, written.skipped) == (0, 0, False)
        assert (table.version(), table.committed_batch(APP)) == (version + 1, batch_id)
    assert table.file_count() == 1
    assert len(stored(uri)) == 3


def test_compaction_changes_no_row_and_lowers_the_file_count(tmp_path):
    """Many small batches leave many files; compaction rewrites them into fewer, with the same
    rows, and the vacuum deletes the replaced files from the folder."""
    uri = tmp_path / "tickets"
    table = TicketsTable(str(uri))
    generator = TicketGenerator(clients=50, seed=4)
    for batch_id in range(8):
        table.write(
            in_order([generator.ticket() for _ in range(10)], 10 * batch_id), APP, batch_id, ENRICHED_AT
        )
    before = stored(uri)
    files_before = table.file_count()
    parquet_before = len(list(uri.rglob("*.parquet")))
    assert files_before >= 8

    done = table.compact(vacuum_retention_hours=0)

    assert table.file_count() < files_before
    assert done.files_removed == files_before
    assert stored(uri) == before
    assert done.files_vacuumed == files_before
    assert len(list(uri.rglob("*.parquet"))) == parquet_before - files_before + done.files_added


def test_a_uri_holding_another_table_is_refused(tmp_path):
    """A Delta table of another schema, or a file, at the URI: TableMismatch, and the table is
    left as it was."""
    other = tmp_path / "other"
    write_deltalake(str(other), pa.table({"ticket_id": ["x"], "n": [1]}))
    with pytest.raises(TableMismatch, match="another schema"):
        TicketsTable(str(other))
    assert DeltaTable(str(other)).version() == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    with pytest.raises(TableMismatch, match="cannot create or open"):
        TicketsTable(str(a_file))


def test_delta_rows_refuse_a_ticket_missing_a_required_value():
    """A row that breaks the schema (a NULL ticket column) fails the write, not the table."""
    ticket = TicketGenerator(clients=3, seed=5).ticket()
    batch = in_order([ticket])
    broken = batch.set_column(TICKET_COLUMNS.index("team"), "team", pa.array([None], pa.string()))
    with pytest.raises(ValueError, match="team"):
        delta_rows(broken, ENRICHED_AT)
