"""What a job reports of each micro-batch: where its time went, and its log line.

The line is for people; programs read the same figures from the job's metrics (jobs.metrics).
The fault suite waits for it only as an event, right after a batch's database commit and
before Spark's checkpoint commit (BATCH_LINE), as a scrape is too slow for that window.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

__all__ = ["BATCH_LINE", "BatchClock", "batch_line"]

# "batch 20: 17 valid (17 new), ..." at the start of a line; groups: batch, valid, new.
BATCH_LINE = re.compile(r"^batch (?P<batch>\d+): (?P<valid>\d+) valid \((?P<new>\d+) new", re.M)


@dataclass
class BatchClock:
    """Where a micro-batch's time went: Spark (read, validate, collect), then PostgreSQL.

    `make bench` sums these from the batch lines to show where a drain spends its time.
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
