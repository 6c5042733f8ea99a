"""A streaming query listener: progress lines every few seconds, offsets mirrored to Kafka."""

from __future__ import annotations

import json
import logging
import time
from typing import ClassVar

from pyspark import SparkContext
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from jobs.metrics import JobMetrics
from jobs.offsets import OffsetCommitter, parse_end_offsets

__all__ = ["ProgressLogger"]

logger = logging.getLogger(__name__)


class _JsonEvents:
    """Hands the JVM's progress events to a Python listener as JSON, in two py4j calls.

    PySpark's own bridge rebuilds each progress event field by field over py4j (about
    forty calls, some of which search the classpath): 14% of a job's CPU at 1,000 tickets/s.
    """

    def __init__(self, listener: StreamingQueryListener) -> None:
        self._listener = listener

    def onQueryStarted(self, jevent) -> None:
        self._listener.onQueryStarted(QueryStartedEvent.fromJObject(jevent))

    def onQueryProgress(self, jevent) -> None:
        self._listener.on_progress(json.loads(jevent.progress().json()))

    def onQueryIdle(self, jevent) -> None:
        self._listener.onQueryIdle(QueryIdleEvent.fromJObject(jevent))

    def onQueryTerminated(self, jevent) -> None:
        self._listener.onQueryTerminated(QueryTerminatedEvent.fromJObject(jevent))

    class Java:
        implements: ClassVar[list[str]] = ["org.apache.spark.sql.streaming.PythonStreamingQueryListener"]


class ProgressLogger(StreamingQueryListener):
    """Logs batches, rows, rates and how far the job is behind the topic, hands each
    batch's end offsets to an OffsetCommitter, and sets the lag gauges of JobMetrics.

    A listener hears every query of the session; this one follows the query whose id
    it is given. It runs on the listener bus thread: it only logs and queues, never blocks.
    """

    def __init__(
        self,
        job: str,
        interval_seconds: float,
        committer: OffsetCommitter | None = None,
        metrics: JobMetrics | None = None,
    ) -> None:
        self._job = job
        self._metrics = metrics
        self._interval = interval_seconds
        self._committer = committer
        self._next = 0.0
        self.query_id: str | None = None
        self.rows_total = 0
        self.batches = 0
        # Milliseconds per micro-batch phase (durationMs: latestOffset, addBatch, walCommit...)
        # summed over the run, so a profile can tell fixed per-batch cost from per-record work.
        self.phase_ms: dict[str, int] = {}

    @property
    def _jlistener(self):
        """The JVM side that `spark.streams.addListener` registers: our JSON bridge."""
        if not hasattr(self, "_jlistenerobj"):
            jvm = SparkContext._jvm
            self._jlistenerobj = jvm.PythonStreamingQueryListenerWrapper(_JsonEvents(self))
        return self._jlistenerobj

    def onQueryStarted(self, event) -> None:
        if str(event.id) == self.query_id or event.name == self._job:
            logger.info("%s: query %s started (run %s)", self._job, event.id, event.runId)

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        self.on_progress(json.loads(event.progress.json))

    def on_progress(self, progress: dict) -> None:
        """One micro-batch's progress, as Spark's StreamingQueryProgress JSON."""
        if progress.get("id") != self.query_id:
            return
        source = (progress.get("sources") or [{}])[0]
        if self._committer and source.get("endOffset"):
            self._committer.submit(parse_end_offsets(source["endOffset"]))
        if self._metrics:
            self._metrics.lag(source)
            self._metrics.batch_phases(progress.get("durationMs") or {})
        self.rows_total += progress.get("numInputRows", 0)
        self.batches += 1
        for phase, ms in (progress.get("durationMs") or {}).items():
            self.phase_ms[phase] = self.phase_ms.get(phase, 0) + ms
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        behind = (source.get("metrics") or {}).get("maxOffsetsBehindLatest", "?")
        logger.info(
            "%s: batch %d, %d rows in all, last batch %d rows, input %.0f rows/s,"
            " processed %.0f rows/s, %s offsets behind latest",
            self._job,
            progress.get("batchId", -1),
            self.rows_total,
            progress.get("numInputRows", 0),
            _rate(progress.get("inputRowsPerSecond")),
            _rate(progress.get("processedRowsPerSecond")),
            behind,
        )
        self._log_phases()

    def _log_phases(self) -> None:
        """The phase sums, largest first ("... 3 batches: addBatch=4210 walCommit=310"); the
        same sums are the metric ticket_pipeline_batch_phase_seconds."""
        ranked = sorted(self.phase_ms.items(), key=lambda item: -item[1])
        sums = " ".join(f"{phase}={ms}" for phase, ms in ranked)
        logger.info("%s: ms by batch phase, %d batches: %s", self._job, self.batches, sums)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        if str(event.id) != self.query_id:
            return
        if event.exception:
            logger.info("%s: query terminated with an error (the job's last line says which)", self._job)
        else:
            logger.info("%s: query stopped", self._job)
        self._log_phases()


def _rate(value) -> float:
    """A rate from progress JSON, where Spark writes NaN as a string."""
    try:
        return float(value or 0.0)
    except ValueError:
        return 0.0
