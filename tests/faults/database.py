"""The fault tests' reads of PostgreSQL and of the producer's ledger."""

from __future__ import annotations

from pathlib import Path

import psycopg2

__all__ = ["counts", "query", "read_ledger"]


def query(database_url: str, password: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(database_url, password=password, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def counts(database_url: str, password: str) -> tuple[int, int]:
    """(rows in tickets, sum of tickets_aggregation); (-1, -1) while PostgreSQL is down."""
    try:
        rows = query(
            database_url,
            password,
            "SELECT (SELECT count(*) FROM tickets),"
            " (SELECT coalesce(sum(ticket_count), 0) FROM tickets_aggregation)",
        )
    except psycopg2.OperationalError:
        return -1, -1
    return int(rows[0][0]), int(rows[0][1])


def read_ledger(path: Path) -> list[str]:
    """Every acknowledged ticket_id, in acknowledgement order (read after the producer exited)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
