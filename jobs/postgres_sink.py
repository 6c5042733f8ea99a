"""Micro-batch writes to PostgreSQL: one transaction per batch, COPY into a staging table.

Every write is idempotent by a natural key (ticket_id; topic/partition/offset for
rejects), so replaying a micro-batch after a crash changes nothing. An unavailable
database is retried with backoff, up to a deadline, before the batch fails.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql

from core.contract import TABLES
from core.postgres import DatabaseUnavailable, connect

__all__ = ["BatchTransaction", "count_new_tickets", "insert_rejected", "insert_tickets"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError, DatabaseUnavailable)
_MAX_BACKOFF_SECONDS = 10.0


class BatchTransaction:
    """Runs a function in one transaction on a kept-open connection, retrying outages."""

    def __init__(self, database_url: str, application_name: str, retry_seconds: float) -> None:
        self._database_url = database_url
        self._application_name = application_name
        self._retry_seconds = retry_seconds
        self._conn = None

    def run(self, work: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """Run `work(cursor)` and commit; on a lost connection, reconnect and run it again."""
        deadline = time.monotonic() + self._retry_seconds
        backoff = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._database_url, application_name=self._application_name)
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
    """A temporary staging table shaped like `like`, emptied at each commit."""
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(stage), sql.Identifier(like))
    )


def insert_tickets(cur, tickets: pa.Table) -> int:
    """Insert new tickets; a ticket_id already stored is left as it is. Return rows inserted."""
    if tickets.num_rows == 0:
        return 0
    create_stage(cur, "stage_tickets", TABLES.tickets)
    copy_rows(cur, "stage_tickets", tickets)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in tickets.column_names)
    # DISTINCT ON keeps the first copy of a ticket_id sent twice within the batch.
    cur.execute(
        sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT DISTINCT ON (ticket_id) {columns}"
            " FROM stage_tickets ORDER BY ticket_id, kafka_partition, kafka_offset"
            " ON CONFLICT (ticket_id) DO NOTHING"
        ).format(table=sql.Identifier(TABLES.tickets), columns=columns)
    )
    return cur.rowcount


def insert_rejected(cur, rejected: pa.Table) -> int:
    """Insert rejected records (raw bytes given hex-encoded); return rows inserted."""
    if rejected.num_rows == 0:
        return 0
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_rejected ("
        " kafka_topic text, kafka_partition integer, kafka_offset bigint,"
        " kafka_timestamp timestamptz, reason text, raw_key_hex text, raw_value_hex text)"
        " ON COMMIT DELETE ROWS"
    )
    copy_rows(cur, "stage_rejected", rejected)
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp,"
            " reason, raw_key, raw_value)"
            " SELECT kafka_topic, kafka_partition, kafka_offset, kafka_timestamp, reason,"
            " decode(raw_key_hex, 'hex'), decode(raw_value_hex, 'hex') FROM stage_rejected"
            " ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING"
        ).format(sql.Identifier(TABLES.rejected))
    )
    return cur.rowcount


def count_new_tickets(cur, tickets: pa.Table) -> dict[str, int]:
    """Add tickets not counted before to the per-type counts; return what was added.

    `tickets` has ticket_id, type, kafka_partition, kafka_offset. The ids already
    counted are kept in a table, so a replayed batch or a resent ticket adds nothing.
    """
    if tickets.num_rows == 0:
        return {}
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_counted ("
        " ticket_id uuid, type text, kafka_partition integer, kafka_offset bigint)"
        " ON COMMIT DELETE ROWS"
    )
    copy_rows(cur, "stage_counted", tickets)
    cur.execute(
        sql.SQL(
            "WITH fresh AS ("
            " INSERT INTO {seen} (ticket_id, type)"
            " SELECT DISTINCT ON (ticket_id) ticket_id, type FROM stage_counted"
            " ORDER BY ticket_id, kafka_partition, kafka_offset"
            " ON CONFLICT (ticket_id) DO NOTHING RETURNING type),"
            " added AS (SELECT type, count(*) AS n FROM fresh GROUP BY type),"
            " upserted AS ("
            " INSERT INTO {agg} (type, ticket_count, updated_at)"
            " SELECT type, n, clock_timestamp() FROM added"
            " ON CONFLICT (type) DO UPDATE SET"
            " ticket_count = {agg}.ticket_count + EXCLUDED.ticket_count,"
            " updated_at = EXCLUDED.updated_at)"
            " SELECT type, n FROM added"
        ).format(seen=sql.Identifier(TABLES.aggregation_seen), agg=sql.Identifier(TABLES.aggregation))
    )
    return dict(cur.fetchall())
