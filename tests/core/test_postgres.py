"""PostgreSQL connections: a statement blocked by a lock is cancelled after the statement
timeout, and a job's transaction then retries until its deadline instead of hanging."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest

from core.postgres import DatabaseUnavailable, connect
from jobs.postgres_sink import BatchTransaction

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@contextmanager
def locked_tickets(database_url: str) -> Iterator[None]:
    """`tickets` locked ACCESS EXCLUSIVE by another session until the block ends."""
    holder = connect(database_url, application_name="lock holder")
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


def test_a_statement_blocked_by_a_lock_is_cancelled_after_the_timeout(database_url):
    """With a statement timeout of 0.5 s, a read of a locked table fails with SQLSTATE 57014
    (query_canceled) instead of waiting for the lock; 0 means no timeout."""
    conn = connect(database_url, application_name="tests", statement_timeout_seconds=0.5)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone() == ("500ms",)
        with locked_tickets(database_url), pytest.raises(psycopg2.errors.QueryCanceled), conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM tickets")
    finally:
        conn.close()
    unlimited = connect(database_url, application_name="tests", statement_timeout_seconds=0)
    with unlimited.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        assert cur.fetchone() == ("0",)
    unlimited.close()


def test_a_jobs_transaction_blocked_for_good_fails_at_its_retry_deadline(writer_url, caplog):
    """A batch whose statement stays blocked is retried, each attempt cancelled by the
    statement timeout, and fails at the DATABASE_RETRY_SECONDS deadline, naming it."""
    transaction = BatchTransaction(writer_url, "tests", retry_seconds=4, statement_timeout_seconds=0.5)
    try:
        owner_url = writer_url.replace("tickets_writer@", "tickets@", 1)
        with locked_tickets(owner_url), pytest.raises(DatabaseUnavailable, match="DATABASE_RETRY_SECONDS"):
            transaction.run(lambda cur: cur.execute("SELECT count(*) FROM tickets"))
    finally:
        transaction.close()
    retries = [r for r in caplog.records if "due to statement timeout" in r.getMessage()]
    assert len(retries) >= 2, [r.getMessage() for r in caplog.records]
