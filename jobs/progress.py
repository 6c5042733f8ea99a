"""A streaming query listener that logs a progress line every few seconds."""

from __future__ import annotations

import logging
import time

from pyspark.sql.streaming import StreamingQueryListener

__all__ = ["ProgressLogger"]

logger = logging.getLogger(__name__)


class ProgressLogger(StreamingQueryListener):
    """Logs batches, rows, rates and how far the job is behind the topic.

    Runs on the listener bus thread: it only formats and logs, never blocks.
    """

    def __init__(self, job: str, interval_seconds: float) -> None:
        self._job = job
        self._interval = interval_seconds
        self._next = 0.0
        self.rows_total = 0
        self.batches = 0

    def onQueryStarted(self, event) -> None:
        logger.info("%s: query %s started (run %s)", self._job, event.id, event.runId)

    def onQueryProgress(self, event) -> None:
        progress = event.progress
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
        if event.exception:
            logger.error("%s: query terminated with an error: %s", self._job, event.exception)
        else:
            logger.info("%s: query stopped", self._job)
