"""The lineage columns of the schema that a fresh migrate builds are those of the contract."""

from __future__ import annotations

import psycopg2
import pytest

from core.contract import LINEAGE_COLUMNS, TABLES, WINNER_ORDER

pytestmark = pytest.mark.integration


def _columns(cur, table: str) -> dict[str, tuple[str, bool]]:
    """Each column of `table`: (its type as PostgreSQL names it, whether it is NOT NULL)."""
    cur.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return {name: (sql_type, not_null) for name, sql_type, not_null in cur.fetchall()}


def _type_name(cur, sql_type: str) -> str:
    cur.execute("SELECT %s::regtype::text", (sql_type,))
    return cur.fetchone()[0]


@pytest.mark.parametrize("table", [TABLES.tickets, TABLES.rejected])
def test_the_tables_that_keep_records_have_the_contracts_lineage(database_url, table):
    """tickets and tickets_rejected hold each of LINEAGE_COLUMNS with its type and NOT NULL:
    the applied migrations are frozen, so a change to the constant needs a new migration."""
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cur:
        stored = _columns(cur, table)
        expected = {c.name: (_type_name(cur, c.sql_type), c.not_null) for c in LINEAGE_COLUMNS}
    conn.close()
    assert {name: stored.get(name) for name in expected} == expected


def test_the_counted_copies_keep_the_winner_order_columns_of_the_contracts_types(database_url):
    """tickets_aggregation_seen has every WINNER_ORDER column, typed as LINEAGE_COLUMNS says
    (nullable: rows counted before migration 4 have no position)."""
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cur:
        stored = _columns(cur, TABLES.aggregation_seen)
        types = {c.name: _type_name(cur, c.sql_type) for c in LINEAGE_COLUMNS}
    conn.close()
    assert {name: stored.get(name) for name in WINNER_ORDER} == {
        name: (types[name], False) for name in WINNER_ORDER
    }
