"""What a job reports of each micro-batch: where its time went, and its log line.

The line is for people; programs (the bench, the fault suite) read the same figures from the
job's metrics (jobs.metrics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["BatchClock", "batch_line"]


@dataclass
class BatchClock:
    """Where a micro-batch's time went: Spark (read, validate, collect), then PostgreSQL.

    Its two parts are the metric ticket_pipeline_batch_duration_seconds{part}, which
    `make bench` sums to show where a drain spends its time.
    """

    started: float = field(default_factory=time.monotonic)
    spark_done: float | None = None
    postgres_done: float | None = None

    def spark_finished(self) -> None:
        self.spark_done = time.monotonic()

    def postgres_finished(self) -> None:
        self.postgres_done = time.monotonic()

    @property
    def spark_seconds(self) -> float:
        return (self.spark_done or time.monotonic()) - self.started

    @property
    def postgres_seconds(self) -> float:
        spark_done = self.spark_done or time.monotonic()
        return (self.postgres_done or time.monotonic()) - spark_done

    def summary(self) -> str:
        """E.g. "in 1.23s (spark 0.80s, postgres 0.43s)"."""
        spark, postgres = self.spark_seconds, self.postgres_seconds
        return f"in {spark + postgres:.2f}s (spark {spark:.2f}s, postgres {postgres:.2f}s)"


def batch_line(batch_id: int, valid: int, new: int, details: str, clock: BatchClock) -> str:
    """E.g. "batch 20: 17 valid (17 new), 0 rejected (0 new) in 0.55s (spark 0.53s, postgres 0.02s)"."""
    return f"batch {batch_id}: {valid} valid ({new} new){details} {clock.summary()}"
