"""Retention of the dead letters: rows of `tickets_rejected` older than a set age are deleted.

The enrichment job calls `DeadLetterRetention.prune_if_due` after each micro-batch; it
deletes at most once per PRUNE_INTERVAL_SECONDS, in slices, in transactions of its own,
so that a large backlog of expired rows never holds up a batch for long. A failure is
logged and tried again at the next interval: retention never fails the job.
"""

from __future__ import annotations

import logging
import time

import psycopg2
from psycopg2 import sql

from core.contract import TABLES
from core.postgres import STATEMENT_TIMEOUT_SECONDS, DatabaseUnavailable
from jobs.postgres_sink import BatchTransaction

__all__ = ["PRUNE_INTERVAL_SECONDS", "DeadLetterRetention"]

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0
_SLICE_ROWS = 10_000


class DeadLetterRetention:
    """Deletes dead letters older than `days` (0 keeps them for ever)."""

    def __init__(
        self,
        database_url: str,
        days: float,
        statement_timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
        interval_seconds: float = PRUNE_INTERVAL_SECONDS,
    ):
        self._days = days
        self._interval = interval_seconds
        self._next = time.monotonic()
        self._transaction = BatchTransaction(database_url, "retention", 0, statement_timeout_seconds)

    def prune_if_due(self) -> int:
        """Delete the expired dead letters if the interval has passed; return how many."""
        if self._days <= 0 or time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self._interval
        try:
            return self.prune()
        except (psycopg2.Error, DatabaseUnavailable) as e:
            logger.warning("retention of %s: not pruned this time: %s", TABLES.rejected, e)
            return 0

    def prune(self) -> int:
        """Delete every dead letter older than the retention, a slice at a time."""
        statement = sql.SQL(
            "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table}"
            " WHERE rejected_at < now() - make_interval(secs => %s) LIMIT %s))"
        ).format(table=sql.Identifier(TABLES.rejected))
        deleted = 0
        while True:
            count = self._transaction.run(
                lambda cur: cur.execute(statement, (self._days * 86400, _SLICE_ROWS)) or cur.rowcount
            )
            deleted += count
            if count < _SLICE_ROWS:
                break
        if deleted:
            logger.info("retention: deleted %d dead letters older than %g days", deleted, self._days)
        return deleted

    def close(self) -> None:
        self._transaction.close()
