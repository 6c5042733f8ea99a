"""The database schema as ordered, idempotent migrations, with DDL derived from the contract.

Each migration runs once, in its own transaction, and is recorded in
`schema_migrations`; an advisory lock serialises concurrent runs (several pods or
processes may start at once). Apply them with `python -m core.migrate`.

An applied migration renders the same SQL forever. So the lineage columns are written
out in them, not derived from core.contract.LINEAGE_COLUMNS: a change to the constant
must come with a new migration, and tests/core/test_lineage.py checks that the schema
a fresh migrate builds has the lineage of LINEAGE_COLUMNS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from core.contract import FIELDS, TABLES, TYPE_TEAMS, TicketType
from core.postgres import password_clause

__all__ = [
    "MIGRATIONS",
    "READER_PRIVILEGES",
    "WRITER_PRIVILEGES",
    "Migration",
    "apply_migrations",
    "grant_reader",
    "grant_writer",
]

logger = logging.getLogger(__name__)

# Any constant; all that matters is that every migrate run takes the same lock.
_ADVISORY_LOCK_ID = 4_242_001


def _in_list(column: str, values: list[str]) -> sql.Composable:
    return sql.SQL("CHECK ({} IN ({}))").format(
        sql.Identifier(column), sql.SQL(", ").join(sql.Literal(v) for v in values)
    )


def _ticket_columns() -> list[sql.Composable]:
    """One column per contract field, NOT NULL, with a CHECK for every enum."""
    columns = []
    for field in FIELDS:
        column = sql.SQL("{} {} NOT NULL").format(sql.Identifier(field.name), sql.SQL(field.sql_type))
        if field.allowed:
            column = sql.SQL("{} {}").format(column, _in_list(field.name, list(field.allowed)))
        columns.append(column)
    return columns


def _create_tickets() -> sql.Composable:
    columns = [
        *_ticket_columns(),
        sql.SQL("team text NOT NULL {}").format(_in_list("team", list(TYPE_TEAMS.values()))),
        # Lineage: where the record came from, and when each stage saw it. Frozen as applied
        # (see the module's docstring): not derived from LINEAGE_COLUMNS.
        sql.SQL("kafka_topic text NOT NULL"),
        sql.SQL("kafka_partition integer NOT NULL"),
        sql.SQL("kafka_offset bigint NOT NULL"),
        sql.SQL("kafka_timestamp timestamptz"),
        sql.SQL("enriched_at timestamptz NOT NULL"),
        sql.SQL("stored_at timestamptz NOT NULL DEFAULT clock_timestamp()"),
    ]
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY (ticket_id));"
        "CREATE INDEX IF NOT EXISTS {} ON {} (created_at);"
    ).format(
        sql.Identifier(TABLES.tickets),
        sql.SQL(", ").join(columns),
        sql.Identifier(f"{TABLES.tickets}_created_at_idx"),
        sql.Identifier(TABLES.tickets),
    )


def _create_rejected() -> sql.Composable:
    """Frozen as applied (see the module's docstring): not derived from LINEAGE_COLUMNS."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ("
        " kafka_topic text NOT NULL,"
        " kafka_partition integer NOT NULL,"
        " kafka_offset bigint NOT NULL,"
        " kafka_timestamp timestamptz,"
        " reason text NOT NULL,"
        " raw_key bytea,"
        " raw_value bytea,"
        " rejected_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        " PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset))"
    ).format(sql.Identifier(TABLES.rejected))


def _create_aggregation() -> sql.Composable:
    types = [t.value for t in TicketType]
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {agg} ("
        " type text PRIMARY KEY {check},"
        " ticket_count bigint NOT NULL CHECK (ticket_count >= 0),"
        " updated_at timestamptz NOT NULL);"
        "CREATE TABLE IF NOT EXISTS {seen} ("
        " ticket_id uuid PRIMARY KEY,"
        " type text NOT NULL {check},"
        " counted_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    ).format(
        agg=sql.Identifier(TABLES.aggregation),
        seen=sql.Identifier(TABLES.aggregation_seen),
        check=_in_list("type", types),
    )


def _add_winner_to_aggregation_seen() -> sql.Composable:
    """The Kafka position of the counted copy, so a winning copy can replace it (its columns
    frozen as applied, see the module's docstring: not derived from WINNER_ORDER)."""
    return sql.SQL(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS kafka_timestamp timestamptz,"
        " ADD COLUMN IF NOT EXISTS kafka_partition integer,"
        " ADD COLUMN IF NOT EXISTS kafka_offset bigint"
    ).format(sql.Identifier(TABLES.aggregation_seen))


def _bound_dead_letters() -> sql.Composable:
    """A dead letter keeps a preview of its raw key and value, with the size and sha-256 of
    each (rows written before keep their whole bytes, with no size or hash)."""
    return sql.SQL(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS raw_key_bytes integer,"
        " ADD COLUMN IF NOT EXISTS raw_key_sha256 bytea,"
        " ADD COLUMN IF NOT EXISTS raw_value_bytes integer,"
        " ADD COLUMN IF NOT EXISTS raw_value_sha256 bytea;"
        "CREATE INDEX IF NOT EXISTS {} ON {} (rejected_at)"
    ).format(
        sql.Identifier(TABLES.rejected),
        sql.Identifier(f"{TABLES.rejected}_rejected_at_idx"),
        sql.Identifier(TABLES.rejected),
    )


def _create_staging() -> sql.Composable:
    """Where the executors stage a micro-batch until the driver commits it, and the last batch
    each query committed (jobs.staged_sink). Staging tables are UNLOGGED: a crash of
    PostgreSQL empties them, and the commit, which checks the staged counts, then fails the
    batch so that Spark runs it again. No constraint but the tags: the target tables check
    the rows at commit. Frozen as applied (see the module's docstring)."""
    tag = "batch_id bigint NOT NULL, writer text NOT NULL, row_number integer NOT NULL"
    lineage = "kafka_topic text, kafka_partition integer, kafka_offset bigint, kafka_timestamp timestamptz"
    return sql.SQL(
        "CREATE UNLOGGED TABLE IF NOT EXISTS {tickets} ({tag},"
        " ticket_id uuid, client_id text, created_at timestamptz, request text, type text,"
        " priority text, team text, {lineage}, enriched_at timestamptz);"
        "CREATE UNLOGGED TABLE IF NOT EXISTS {counted} ({tag},"
        " ticket_id uuid, type text, created_at timestamptz, {lineage});"
        "CREATE TABLE IF NOT EXISTS {commits} ("
        " query_id uuid PRIMARY KEY, sink text NOT NULL, batch_id bigint NOT NULL,"
        " committed_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    ).format(
        tag=sql.SQL(tag),
        lineage=sql.SQL(lineage),
        tickets=sql.Identifier(TABLES.tickets_staged),
        counted=sql.Identifier(TABLES.aggregation_staged),
        commits=sql.Identifier(TABLES.sink_commits),
    )


@dataclass(frozen=True)
class Migration:
    """One schema change, applied once."""

    version: int
    name: str
    statement: Callable[[], sql.Composable]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create tickets", _create_tickets),
    Migration(2, "create tickets_rejected", _create_rejected),
    Migration(3, "create tickets_aggregation", _create_aggregation),
    Migration(4, "record the counted copy's Kafka position", _add_winner_to_aggregation_seen),
    Migration(5, "bound the dead letters' raw bytes", _bound_dead_letters),
    Migration(6, "stage micro-batches written from the executors", _create_staging),
)


def apply_migrations(conn) -> list[Migration]:
    """Apply the migrations not applied yet; return them. Safe to run concurrently."""
    applied_now = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
        try:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            cur.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                cur.execute(migration.statement())
                cur.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                conn.commit()
                logger.info("applied migration %d: %s", migration.version, migration.name)
                applied_now.append(migration)
        finally:
            conn.rollback()
            cur.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
            conn.commit()
    return applied_now


# What the Spark jobs need, and nothing more: no DDL; no DELETE but of expired dead letters
# (the enrichment job's retention of tickets_rejected) and of staged rows, no TRUNCATE but of
# the staging tables. UPDATE replaces a stored ticket (or its counted copy) by a copy that
# wins by the jobs' WINNER_ORDER, and a query's last committed batch; rejects are never
# updated.
_STAGING_PRIVILEGES = ("SELECT", "INSERT", "DELETE", "TRUNCATE")
WRITER_PRIVILEGES: dict[str, tuple[str, ...]] = {
    TABLES.tickets: ("SELECT", "INSERT", "UPDATE"),
    TABLES.rejected: ("SELECT", "INSERT", "DELETE"),
    TABLES.aggregation: ("SELECT", "INSERT", "UPDATE"),
    TABLES.aggregation_seen: ("SELECT", "INSERT", "UPDATE"),
    TABLES.tickets_staged: _STAGING_PRIVILEGES,
    TABLES.aggregation_staged: _STAGING_PRIVILEGES,
    TABLES.sink_commits: ("SELECT", "INSERT", "UPDATE"),
}


# What the live dashboard reads, and nothing more: it writes nothing.
READER_PRIVILEGES: dict[str, tuple[str, ...]] = {
    TABLES.tickets: ("SELECT",),
    TABLES.rejected: ("SELECT",),
    TABLES.aggregation: ("SELECT",),
}


def grant_writer(conn, role: str, password: str | None) -> bool:
    """Give the jobs' role exactly WRITER_PRIVILEGES; create it first when a password is given.

    Return False when the role does not exist and cannot be created (no password given).
    Runs on every migrate, so a role created after the tables still gets its rights.
    """
    return _grant(conn, role, password, WRITER_PRIVILEGES)


def grant_reader(conn, role: str, password: str | None) -> bool:
    """Give the dashboard's role exactly READER_PRIVILEGES, as grant_writer does the jobs'."""
    return _grant(conn, role, password, READER_PRIVILEGES)


def _grant(conn, role: str, password: str | None, grants: dict[str, tuple[str, ...]]) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        exists = cur.fetchone() is not None
        if password is not None:
            verb = "ALTER" if exists else "CREATE"
            cur.execute(
                sql.SQL("{} ROLE {} LOGIN {}").format(
                    sql.SQL(verb), sql.Identifier(role), password_clause(conn, role, password)
                )
            )
        elif not exists:
            conn.rollback()
            return False
        for table, privileges in grants.items():
            cur.execute(
                sql.SQL("GRANT {} ON {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges),
                    sql.Identifier(table),
                    sql.Identifier(role),
                )
            )
    conn.commit()
    return True
