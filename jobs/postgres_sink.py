"""Micro-batch writes to PostgreSQL: one transaction per batch, COPY into a staging table.

Every write is idempotent by a natural key (ticket_id; topic/partition/offset for
rejects), so replaying a micro-batch after a crash changes nothing. A ticket_id sent
more than once resolves to the same copy in both jobs (WINNER_ORDER). An unavailable
database is retried with backoff, up to a deadline, before the batch fails.

A row that PostgreSQL refuses (`is_refusal`: a data error, or a check or not-null
violation) does not fail the batch: `write_isolating` finds it by bisection under a
savepoint, writes the rest, and the job stores the refused row in `tickets_rejected`,
all in the batch's one transaction.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql

from core.contract import (
    FIELDS,
    KAFKA_POSITION,
    LINEAGE_COLUMNS,
    LINEAGE_NAMES,
    RAW_PART_TYPES,
    RAW_PARTS,
    TABLES,
    WINNER_ORDER,
    quote,
)
from core.postgres import STATEMENT_TIMEOUT_SECONDS, DatabaseUnavailable, connect

__all__ = [
    "REFUSAL_REASON_CHARS",
    "BatchTransaction",
    "Refused",
    "TableRows",
    "Written",
    "copy_rows",
    "count_new_tickets",
    "count_tickets",
    "insert_rejected",
    "insert_tickets",
    "is_refusal",
    "move_rejected",
    "refusal_reason",
    "upsert_tickets",
    "write_isolating",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError, DatabaseUnavailable)
_MAX_BACKOFF_SECONDS = 10.0

# The PostgreSQL type of each column a staging table may have: the contract's fields and
# lineage, and the dead letters' raw parts, in hex, decoded on insert (jobs.dead_letters).
_STAGED_TYPES: dict[str, str] = {
    **{f.name: f.sql_type for f in FIELDS},
    **{c.name: c.sql_type for c in LINEAGE_COLUMNS},
    "reason": "text",
    **{f"{part}_{what}": t for part in RAW_PARTS for what, t in RAW_PART_TYPES.items()},
}
_STAGE_REJECTED = (*LINEAGE_NAMES, "reason", *(f"{p}_{what}" for p in RAW_PARTS for what in RAW_PART_TYPES))
_STAGE_COUNTED = ("ticket_id", "type", *WINNER_ORDER)


class BatchTransaction:
    """Runs a function in one transaction on a kept-open connection, retrying outages."""

    def __init__(
        self,
        database_url: str,
        application_name: str,
        retry_seconds: float,
        statement_timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
    ) -> None:
        self._database_url = database_url
        self._application_name = application_name
        self._retry_seconds = retry_seconds
        self._statement_timeout_seconds = statement_timeout_seconds
        self._conn = None
        # Attempts that met an unavailable PostgreSQL and were retried, in this object's life.
        self.retries = 0

    def run(self, work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """Run `work(cursor)` and commit; on a lost connection, reconnect and run it again."""
        deadline = time.monotonic() + self._retry_seconds
        backoff = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(
                        self._database_url,
                        application_name=self._application_name,
                        statement_timeout_seconds=self._statement_timeout_seconds,
                    )
                with self._conn.cursor() as cur:
                    result = work(cur)
                self._conn.commit()
                return result
            except _TRANSIENT as e:
                self.close()
                if time.monotonic() + backoff > deadline:
                    raise DatabaseUnavailable(
                        f"PostgreSQL still unavailable after {self._retry_seconds:g}s "
                        f"(DATABASE_RETRY_SECONDS): {e}"
                    ) from e
                logger.warning("PostgreSQL unavailable, retrying in %.1fs: %s", backoff, e)
                self.retries += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            except BaseException:
                if self._conn is not None and not self._conn.closed:
                    self._conn.rollback()
                raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg2.Error):
                self._conn.close()
            self._conn = None


def copy_rows(cur, table: str, rows: pa.Table) -> None:
    """COPY an Arrow table into `table`, matching columns by name."""
    if rows.num_rows == 0:
        return
    buffer = io.BytesIO()
    pa_csv.write_csv(rows, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in rows.column_names)
    )
    cur.copy_expert(statement.as_string(cur), buffer)


def create_stage(cur, stage: str, like: str) -> None:
    """A temporary staging table shaped like `like`, empty (it is emptied at each commit too,
    and a batch written in parts must not see an earlier part's rows)."""
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(stage), sql.Identifier(like))
    )
    _empty(cur, stage)


def _create_typed_stage(cur, stage: str, columns: tuple[str, ...]) -> None:
    """An empty temporary staging table of `columns`, typed as _STAGED_TYPES says, with no
    constraint (the target table checks the rows)."""
    cur.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            sql.Identifier(stage),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_STAGED_TYPES[c])) for c in columns
            ),
        )
    )
    _empty(cur, stage)


def _empty(cur, stage: str) -> None:
    cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(stage)))


# SQLSTATEs that say "this data cannot be stored", as opposed to an outage or an expected
# conflict: class 22 (data exception: out of range, bad encoding, NUL, bad input syntax),
# not-null violation, check violation.
_REFUSAL_CLASS = "22"
_REFUSAL_CODES = ("23502", "23514")
# The longest reason written for a refused row; it quotes PostgreSQL's message.
REFUSAL_REASON_CHARS = 200
_SAVEPOINT = "refusal_isolation"


def is_refusal(error: psycopg2.Error) -> bool:
    """Whether PostgreSQL refused the data itself (the rows can never be stored as they are)."""
    code = error.pgcode or ""
    return code.startswith(_REFUSAL_CLASS) or code in _REFUSAL_CODES


def refusal_reason(error: psycopg2.Error) -> str:
    """'refused by PostgreSQL: 22008 date/time field value out of range: ...', short and
    free of control characters, so that the reason itself is always storable."""
    message = error.diag.message_primary or str(error).strip().splitlines()[0]
    return quote(f"refused by PostgreSQL: {error.pgcode} {message}", REFUSAL_REASON_CHARS)


class Refused(NamedTuple):
    """A row of a written table that PostgreSQL refused, and why."""

    index: int
    reason: str


def write_isolating(
    cur, rows: pa.Table, write: Callable[[psycopg2.extensions.cursor, pa.Table], T]
) -> tuple[list[T], list[Refused]]:
    """Run `write(cur, rows)`; where PostgreSQL refuses the data, halve the rows until each
    refused row stands alone, and write all the others. Return the results of the parts
    written and the refused rows (their index in `rows`), in order.

    Each part runs under a savepoint, so a refused part leaves no trace in the transaction.
    A batch that PostgreSQL accepts costs one savepoint more than a plain write.
    """
    results: list[T] = []
    refused: list[Refused] = []
    parts = [(0, rows.num_rows)]
    while parts:
        start, stop = parts.pop()
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            results.append(write(cur, rows.slice(start, stop - start)))
        except psycopg2.Error as error:
            if not is_refusal(error):
                raise
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            if stop - start == 1:
                refused.append(Refused(start, refusal_reason(error)))
            else:
                middle = (start + stop) // 2
                parts += [(middle, stop), (start, middle)]
        else:
            cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    return results, sorted(refused)


def _winner_key(table: str) -> sql.Composable:
    return sql.SQL("({})").format(
        sql.SQL(", ").join(sql.Identifier(table, column) for column in WINNER_ORDER)
    )


class TableRows:
    """Every row of a table: the rows a write reads (see StagedRows for a micro-batch's)."""

    def __init__(self, table: str, num_rows: int) -> None:
        self.table = table
        self.num_rows = num_rows

    def source(self) -> sql.Composable:
        """What follows FROM in a statement that reads the rows."""
        return sql.Identifier(self.table)


def _winners(columns: sql.Composable, rows: TableRows) -> sql.Composable:
    """One row per ticket_id of `rows`: the copy that wins by WINNER_ORDER."""
    return sql.SQL("SELECT DISTINCT ON (ticket_id) {} FROM {} ORDER BY ticket_id, {}").format(
        columns, rows.source(), sql.SQL(", ").join(map(sql.Identifier, WINNER_ORDER))
    )


class Written(NamedTuple):
    """What a batch did to `tickets`."""

    inserted: int
    replaced: int


def insert_tickets(cur, tickets: pa.Table) -> Written:
    """Upsert an Arrow table of tickets (see upsert_tickets), through a temporary stage."""
    if tickets.num_rows == 0:
        return Written(0, 0)
    create_stage(cur, "stage_tickets", TABLES.tickets)
    copy_rows(cur, "stage_tickets", tickets)
    return upsert_tickets(cur, TableRows("stage_tickets", tickets.num_rows), tickets.column_names)


def upsert_tickets(cur, rows: TableRows, columns: list[str]) -> Written:
    """Upsert tickets: a new ticket_id is inserted; a stored one is replaced only by a
    copy that wins by WINNER_ORDER (a replay or a later copy leaves it as it is)."""
    if rows.num_rows == 0:
        return Written(0, 0)
    names = [*(c for c in columns if c != "ticket_id"), "stored_at"]
    selected = sql.SQL(", ").join(map(sql.Identifier, columns))
    cur.execute(
        sql.SQL(
            "WITH written AS ("
            " INSERT INTO {table} ({columns}) {winners}"
            " ON CONFLICT (ticket_id) DO UPDATE SET ({names}) = ROW({excluded})"
            " WHERE {proposed} < {stored}"
            " RETURNING xmax = 0 AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
            " FROM written"
        ).format(
            table=sql.Identifier(TABLES.tickets),
            columns=selected,
            winners=_winners(selected, rows),
            names=sql.SQL(", ").join(map(sql.Identifier, names)),
            excluded=sql.SQL(", ").join(sql.Identifier("excluded", n) for n in names[:-1])
            + sql.SQL(", clock_timestamp()"),
            proposed=_winner_key("excluded"),
            stored=_winner_key(TABLES.tickets),
        )
    )
    return Written(*cur.fetchone())


def insert_rejected(cur, rejected: pa.Table) -> int:
    """Insert an Arrow table of dead letters (see move_rejected), through a temporary stage."""
    if rejected.num_rows == 0:
        return 0
    _create_typed_stage(cur, "stage_rejected", _STAGE_REJECTED)
    copy_rows(cur, "stage_rejected", rejected)
    return move_rejected(cur, TableRows("stage_rejected", rejected.num_rows))


def move_rejected(cur, rows: TableRows) -> int:
    """Insert dead letters (previews and hashes given in hex, see jobs.dead_letters), each
    position once; return rows inserted."""
    if rows.num_rows == 0:
        return 0
    kept = [sql.Identifier(c) for c in (*LINEAGE_NAMES, "reason")]
    stored, staged = list(kept), list(kept)
    for part in RAW_PARTS:
        stored += [sql.Identifier(part), sql.Identifier(f"{part}_bytes"), sql.Identifier(f"{part}_sha256")]
        staged += [_unhex(f"{part}_hex"), sql.Identifier(f"{part}_bytes"), _unhex(f"{part}_sha256")]
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING").format(
            sql.Identifier(TABLES.rejected),
            sql.SQL(", ").join(stored),
            sql.SQL(", ").join(staged),
            rows.source(),
            sql.SQL(", ").join(map(sql.Identifier, KAFKA_POSITION)),
        )
    )
    return cur.rowcount


def _unhex(column: str) -> sql.Composable:
    return sql.SQL("decode({}, 'hex')").format(sql.Identifier(column))


def count_new_tickets(cur, tickets: pa.Table) -> dict[str, int]:
    """Count an Arrow table of tickets (see count_tickets), through a temporary stage."""
    if tickets.num_rows == 0:
        return {}
    _create_typed_stage(cur, "stage_counted", _STAGE_COUNTED)
    copy_rows(cur, "stage_counted", tickets)
    return count_tickets(cur, TableRows("stage_counted", tickets.num_rows))


def count_tickets(cur, rows: TableRows) -> dict[str, int]:
    """Count the tickets of a batch per type, each ticket_id once; return the changes.

    `rows` have ticket_id, type and the WINNER_ORDER columns. The copy counted for
    each id is kept in a table: a replayed batch or a resent copy changes nothing, and
    a copy that wins over the counted one moves the id to its type (+1/-1), so the
    counts always equal the GROUP BY over `tickets`, whatever the batch boundaries.
    """
    if rows.num_rows == 0:
        return {}
    counted = sql.SQL(", ").join(map(sql.Identifier, _STAGE_COUNTED))
    updated = sql.SQL(", ").join(map(sql.Identifier, ("type", *WINNER_ORDER, "counted_at")))
    # Every CTE reads the same snapshot: `previous` sees the counted copies before this batch.
    cur.execute(
        sql.SQL(
            "WITH batch AS ({winners}),"
            " previous AS (SELECT ticket_id, s.type FROM {seen} s JOIN batch USING (ticket_id)),"
            " counted AS ("
            " INSERT INTO {seen} ({counted}, counted_at) SELECT *, clock_timestamp() FROM batch"
            " ON CONFLICT (ticket_id) DO UPDATE SET ({updated}) = ROW({excluded})"
            " WHERE {proposed} < {stored}"
            " RETURNING ticket_id, type),"
            " moves AS (SELECT type, 1 AS n FROM counted"
            " UNION ALL SELECT p.type, -1 FROM previous p JOIN counted USING (ticket_id)),"
            " changes AS (SELECT type, sum(n)::bigint AS n FROM moves GROUP BY type"
            " HAVING sum(n) <> 0),"
            " raised AS ("
            " INSERT INTO {agg} (type, ticket_count, updated_at)"
            " SELECT type, n, clock_timestamp() FROM changes WHERE n > 0"
            " ON CONFLICT (type) DO UPDATE SET"
            " ticket_count = {agg}.ticket_count + EXCLUDED.ticket_count,"
            " updated_at = EXCLUDED.updated_at),"
            " lowered AS ("
            " UPDATE {agg} SET ticket_count = {agg}.ticket_count + c.n, updated_at = clock_timestamp()"
            " FROM changes c WHERE {agg}.type = c.type AND c.n < 0)"
            " SELECT type, n FROM changes"
        ).format(
            winners=_winners(counted, rows),
            seen=sql.Identifier(TABLES.aggregation_seen),
            agg=sql.Identifier(TABLES.aggregation),
            counted=counted,
            updated=updated,
            excluded=sql.SQL(", ").join(
                sql.Identifier("excluded", n) for n in ("type", *WINNER_ORDER, "counted_at")
            ),
            proposed=_winner_key("excluded"),
            stored=_winner_key(TABLES.aggregation_seen),
        )
    )
    return dict(cur.fetchall())
