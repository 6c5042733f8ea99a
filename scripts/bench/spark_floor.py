"""Baseline: the Spark floor, what Spark alone costs the enrichment job.

The enrichment job's query with nothing of ours after it: the job's own stream
(jobs.enrichment.SPEC.stream: the Kafka source of jobs.spark_session.kafka_stream, at most
MAX_OFFSETS_PER_TRIGGER records a micro-batch, projected by `enrich`: the JSON parse and
the validation), its session (jobs.spark_session.build_session: JVM options, driver memory)
and its trigger interval, written to Spark's built-in `noop` sink, which runs the plan over
every record and stores nothing. What the job takes beyond it is our sink's: the rows
handed to Python and the PostgreSQL writes.

Its settings are the enrichment job's (flags, env vars, defaults: `--help`). Its checkpoint
is a fresh temporary folder, so each run reads the topic from its start. --progress-file is
created when the query has started; then each micro-batch's progress (batchId, timestamp,
batchDuration, numInputRows) is appended to it as one JSON line, from which the bench
measures the drain. Runs until SIGTERM or SIGINT.

    python -m scripts.bench.spark_floor --progress-file FILE --bootstrap-servers H:P --topic T
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from core.settings import SettingError, load
from jobs.enrichment import SPEC
from jobs.settings import EnrichmentSettings
from jobs.spark_session import build_session

__all__ = ["PROGRESS_FIELDS", "QUERY_NAME", "main"]

QUERY_NAME = "spark-floor"
# What each line of the progress file holds, from StreamingQueryProgress.
PROGRESS_FIELDS = ("batchId", "timestamp", "batchDuration", "numInputRows")


class _ProgressFile(StreamingQueryListener):
    """Creates the file when the query starts, then appends each micro-batch's progress to
    it, one JSON line, flushed at once (it runs on the listener bus: a line is all it does)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: TextIO | None = None

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        self._file = self._path.open("a", encoding="utf-8")

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        progress = event.progress
        line = {field: getattr(progress, field) for field in PROGRESS_FIELDS}
        if self._file is not None:
            self._file.write(json.dumps(line) + "\n")
            self._file.flush()

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        pass

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        if self._file is not None:
            self._file.close()


def main(argv: list[str] | None = None) -> int:
    # --progress-file is the floor's own; the rest, --help included, is the job's command line.
    parser = argparse.ArgumentParser(prog="spark_floor", add_help=False)
    parser.add_argument("--progress-file", type=Path)
    args, job_argv = parser.parse_known_args(argv)
    try:
        settings = load(
            EnrichmentSettings, job_argv, prog="spark_floor --progress-file FILE", description=__doc__
        )
    except SettingError as e:
        print(e, file=sys.stderr)
        return 2
    if args.progress_file is None:
        parser.error("--progress-file is required")
    spark = build_session(QUERY_NAME, settings, SPEC.ui_port(settings))
    spark.streams.addListener(_ProgressFile(args.progress_file))
    checkpoint = tempfile.TemporaryDirectory(prefix="spark-floor-checkpoint-")
    query = (
        SPEC.stream(spark, settings)
        .writeStream.queryName(QUERY_NAME)
        .format("noop")
        .option("checkpointLocation", checkpoint.name)
        .trigger(processingTime=f"{settings.trigger_interval_seconds:g} seconds")
        .start()
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and query.isActive:
        query.awaitTermination(1)
    error = query.exception()
    query.stop()
    spark.stop()
    checkpoint.cleanup()
    if error is not None:
        print(f"spark floor failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
