"""Aggregation job: the number of tickets per type, updated every micro-batch.

Usage (local):  python -m jobs.aggregation [--bootstrap-servers HOST:PORT] ...
Usage (Spark):  spark-submit jobs/aggregation.py

Each micro-batch validates records exactly as the enrichment job does, then, in one
transaction, records the counted copy of each ticket id and updates `tickets_aggregation`.
A ticket id already counted adds nothing, so replays and resent tickets count once; a
copy that wins over the counted one (WINNER_ORDER) moves the id to its type.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.postgres_sink import WINNER_ORDER, BatchTransaction, count_new_tickets
from jobs.progress import BatchClock
from jobs.settings import AggregationSettings
from jobs.streaming import JobSpec, run_main
from jobs.validation import classify

__all__ = ["countable", "main"]


def countable(kafka_df: DataFrame) -> DataFrame:
    """The valid tickets of a batch, reduced to what counting needs."""
    return classify(kafka_df).where(F.col("reason").isNull()).select("ticket_id", "type", *WINNER_ORDER)


def batch_writer(settings: AggregationSettings):
    """The foreachBatch function: count new tickets per type in one transaction."""
    transaction = BatchTransaction(settings.database_url, "aggregation", settings.db_retry_seconds)

    def write(kafka_df: DataFrame, batch_id: int) -> None:
        clock = BatchClock()
        tickets = countable(kafka_df).toArrow()
        if tickets.num_rows == 0:
            return
        clock.spark_finished()
        added = transaction.run(lambda cur: count_new_tickets(cur, tickets))
        summary = ", ".join(f"{t} {n:+d}" for t, n in sorted(added.items())) or "nothing new"
        print(f"batch {batch_id}: {tickets.num_rows} valid tickets, {summary} {clock.summary()}", flush=True)

    return write


SPEC = JobSpec("aggregation", 4041, batch_writer)


def main(argv: list[str] | None = None) -> int:
    return run_main(SPEC, AggregationSettings, argv)


if __name__ == "__main__":
    sys.exit(main())
