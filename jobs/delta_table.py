"""The Delta Lake table of enriched tickets: its schema, and its exactly-once writes (delta-rs).

The table holds every valid ticket once, with the columns that `tickets` stores
(jobs.tickets_sink.STORED_COLUMNS), partitioned by the UTC day of `created_at`
(`created_date`). Its schema, TICKETS_SCHEMA, is derived from those columns and the
contract's types: texts as strings, instants as microseconds in UTC. Every batch is cast to it
before it is written, so a type that drifts (in the contract, in Spark) fails the write
instead of changing the table.

A write is one MERGE keyed on ticket_id: a new id is inserted, a stored one is replaced only
by a copy that wins by WINNER_ORDER, the rule of PostgreSQL's upsert
(jobs.postgres_sink.upsert_tickets). Its commit carries an application transaction, the
query's id and the batch id: a batch whose id the table already holds for that query is
skipped, so a batch that Spark runs again after a crash changes nothing. A batch that
changes no row (every ticket already stored, or none valid) commits its transaction alone,
so that each batch is one commit and the table's version of the query is its last batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from core.contract import FIELDS, LINEAGE_COLUMNS, WINNER_ORDER
from jobs.tickets_sink import STORED_COLUMNS

__all__ = [
    "PARTITION_COLUMN",
    "TICKETS_SCHEMA",
    "UTC_MICROS",
    "Compaction",
    "DeltaWrite",
    "TableMismatch",
    "TicketsTable",
    "delta_rows",
]

UTC_MICROS = pa.timestamp("us", tz="UTC")
PARTITION_COLUMN = "created_date"
# The Arrow type of each PostgreSQL type of the stored columns.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "uuid": pa.string(),
    "text": pa.string(),
    "timestamptz": UTC_MICROS,
    "integer": pa.int32(),
    "bigint": pa.int64(),
}
_SQL_TYPES: dict[str, str] = {
    **{f.name: f.sql_type for f in FIELDS},
    "team": "text",
    **{c.name: c.sql_type for c in LINEAGE_COLUMNS},
    "enriched_at": "timestamptz",
}
_NULLABLE = frozenset(c.name for c in LINEAGE_COLUMNS if not c.not_null)
TICKETS_SCHEMA = pa.schema(
    [
        *(pa.field(n, _ARROW_TYPES[_SQL_TYPES[n]], nullable=n in _NULLABLE) for n in STORED_COLUMNS),
        pa.field(PARTITION_COLUMN, pa.date32(), nullable=False),
    ]
)
_SOURCE, _TARGET = "source", "target"


class TableMismatch(ValueError):
    """The URI holds something else than the tickets table (another schema or partitioning, not a
    Delta table), or cannot be written."""


class DeltaWrite(NamedTuple):
    """What one batch did to the table: its tickets (one per ticket_id), those inserted and
    those that replaced a stored copy; `skipped` when the table already held the batch."""

    tickets: int
    inserted: int
    replaced: int
    skipped: bool
    version: int


class Compaction(NamedTuple):
    """What a compaction and the vacuum after it did."""

    files_removed: int
    files_added: int
    files_vacuumed: int


def _before(columns: tuple[str, ...]) -> str:
    """SQL: the source's copy comes before the target's in the order of `columns`. NULL (not
    before) when a timestamp is missing, as PostgreSQL's row comparison is."""
    column, *rest = columns
    source, target = f"{_SOURCE}.{column}", f"{_TARGET}.{column}"
    if not rest:
        return f"{source} < {target}"
    return f"({source} < {target} OR ({source} = {target} AND {_before(tuple(rest))}))"


_WINS = _before(WINNER_ORDER)


def delta_rows(tickets: pa.Table, enriched_at: datetime) -> pa.Table:
    """The rows of TICKETS_SCHEMA for a batch of enriched tickets (TICKET_COLUMNS and the
    lineage): one per ticket_id, the first by WINNER_ORDER (a missing timestamp last, as
    PostgreSQL's DISTINCT ON), stamped `enriched_at`, with their day."""
    if tickets.num_rows:
        ordered = tickets.sort_by([("ticket_id", "ascending"), *((c, "ascending") for c in WINNER_ORDER)])
        ids = ordered["ticket_id"].combine_chunks()
        first = pa.concat_arrays([pa.array([True]), pc.not_equal(ids[1:], ids[:-1])])
        tickets = ordered.filter(first)
    created_at = pc.cast(tickets["created_at"], UTC_MICROS)
    columns = {
        **{name: tickets[name] for name in STORED_COLUMNS if name != "enriched_at"},
        "enriched_at": pa.repeat(pa.scalar(enriched_at, UTC_MICROS), tickets.num_rows),
        # The day in UTC: the instant's, whatever zone the batch's timestamps came in.
        PARTITION_COLUMN: pc.cast(created_at, pa.date32()),
    }
    return pa.table({name: columns[name] for name in TICKETS_SCHEMA.names}).cast(TICKETS_SCHEMA)


class TicketsTable:
    """The Delta table at a URI, created empty on first use; TableMismatch when the URI holds
    another table or cannot be written."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self._storage_options = storage_options or None
        try:
            self._table = DeltaTable.create(
                uri,
                TICKETS_SCHEMA,
                mode="ignore",
                partition_by=[PARTITION_COLUMN],
                name="tickets",
                description="Every valid ticket once, with its team and lineage (ticket-pipeline)",
                storage_options=self._storage_options,
            )
        except (DeltaError, TableNotFoundError, OSError) as e:
            raise TableMismatch(f"cannot create or open a Delta table at {uri}: {e}") from e
        found = pa.schema(self._table.schema().to_arrow())
        if not found.equals(TICKETS_SCHEMA):
            raise TableMismatch(f"the Delta table at {uri} has another schema:\n{found}")
        partitioning = self._table.metadata().partition_columns
        if partitioning != [PARTITION_COLUMN]:
            raise TableMismatch(f"the Delta table at {uri} is partitioned by {partitioning}")

    def version(self) -> int:
        self._table.update_incremental()
        return self._table.version()

    def committed_batch(self, app_id: str) -> int | None:
        """The last batch id that the query `app_id` committed to the table (None: none)."""
        self._table.update_incremental()
        return self._table.transaction_version(app_id)

    def holds(self, app_id: str, batch_id: int) -> bool:
        """Whether the query `app_id` has committed `batch_id` (or a later batch)."""
        committed = self.committed_batch(app_id)
        return committed is not None and batch_id <= committed

    def write(self, tickets: pa.Table, app_id: str, batch_id: int, enriched_at: datetime) -> DeltaWrite:
        """Merge one batch of enriched tickets (see delta_rows) in one commit, unless the query
        `app_id` has already committed `batch_id`."""
        if self.holds(app_id, batch_id):
            return DeltaWrite(0, 0, 0, skipped=True, version=self._table.version())
        rows = delta_rows(tickets, enriched_at)
        transaction = CommitProperties(app_transactions=[Transaction(app_id, batch_id)])
        inserted = replaced = 0
        if rows.num_rows:
            metrics = (
                self._table.merge(
                    rows,
                    f"{_TARGET}.ticket_id = {_SOURCE}.ticket_id",
                    source_alias=_SOURCE,
                    target_alias=_TARGET,
                    commit_properties=transaction,
                )
                .when_matched_update_all(predicate=_WINS)
                .when_not_matched_insert_all()
                .execute()
            )
            inserted, replaced = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
        if self.committed_batch(app_id) != batch_id:
            # A MERGE that changes no row commits nothing: record the batch all the same.
            write_deltalake(self._table, rows.slice(0, 0), mode="append", commit_properties=transaction)
        return DeltaWrite(rows.num_rows, inserted, replaced, skipped=False, version=self.version())

    def compact(self, vacuum_retention_hours: int) -> Compaction:
        """Rewrite small files into larger ones (no row changes), then delete the files that the
        table stopped using more than `vacuum_retention_hours` ago."""
        self._table.update_incremental()
        compacted = self._table.optimize.compact()
        vacuumed = self._table.vacuum(
            retention_hours=vacuum_retention_hours, dry_run=False, enforce_retention_duration=False
        )
        return Compaction(compacted["numFilesRemoved"], compacted["numFilesAdded"], len(vacuumed))

    def file_count(self) -> int:
        """Files of the table's current version."""
        self._table.update_incremental()
        return len(self._table.file_uris())
