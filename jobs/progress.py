"""A streaming query listener: progress lines every few seconds, offsets mirrored to Kafka."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pyspark.sql.streaming import StreamingQueryListener

from jobs.offsets import OffsetCommitter, parse_end_offsets

__all__ = ["BatchClock", "ProgressLogger"]

logger = logging.getLogger(__name__)


class ProgressLogger(StreamingQueryListener):
    """Logs batches, rows, rates and how far the job is behind the topic, and hands each
    batch's end offsets to an OffsetCommitter.

    A listener hears every query of the session; this one follows the query whose id
    it is given. It runs on the listener bus thread: it only logs and queues, never blocks.
    """

    def __init__(self, job: str, interval_seconds: float, committer: OffsetCommitter | None = None) -> None:
        self._job = job
        self._interval = interval_seconds
        self._committer = committer
        self._next = 0.0
        self.query_id: str | None = None
        self.rows_total = 0
        self.batches = 0

    def onQueryStarted(self, event) -> None:
        if str(event.id) == self.query_id or event.name == self._job:
            logger.info("%s: query %s started (run %s)", self._job, event.id, event.runId)

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        if str(progress.id) != self.query_id:
            return
        if self._committer and progress.sources:
            self._committer.submit(parse_end_offsets(progress.sources[0].endOffset))
        self.rows_total += progress.numInputRows
        self.batches += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        behind = "?"
        if progress.sources:
            metrics = progress.sources[0].metrics or {}
            behind = metrics.get("maxOffsetsBehindLatest", "?")
        logger.info(
            "%s: batch %d, %d rows in all, last batch %d rows, input %.0f rows/s,"
            " processed %.0f rows/s, %s offsets behind latest",
            self._job,
            progress.batchId,
            self.rows_total,
            progress.numInputRows,
            progress.inputRowsPerSecond or 0.0,
            progress.processedRowsPerSecond or 0.0,
            behind,
        )

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        if str(event.id) != self.query_id:
            return
        if event.exception:
            logger.error("%s: query terminated with an error: %s", self._job, event.exception)
        else:
            logger.info("%s: query stopped", self._job)


@dataclass
class BatchClock:
    """Where a micro-batch's time went: Spark (read, validate, collect), then PostgreSQL.

    `make bench` sums these from the batch lines to show where a drain spends its time.
    """

    started: float = field(default_factory=time.monotonic)
    spark_done: float | None = None

    def spark_finished(self) -> None:
        self.spark_done = time.monotonic()

    def summary(self) -> str:
        """E.g. "in 1.23s (spark 0.80s, postgres 0.43s)"."""
        now = time.monotonic()
        spark_done = self.spark_done or now
        return (
            f"in {now - self.started:.2f}s"
            f" (spark {spark_done - self.started:.2f}s, postgres {now - spark_done:.2f}s)"
        )
