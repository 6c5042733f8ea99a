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

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame

from jobs.metrics import JobMetrics
from jobs.postgres_sink import WINNER_ORDER, BatchTransaction, count_new_tickets
from jobs.progress import BatchClock
from jobs.settings import AggregationSettings
from jobs.streaming import JobSpec, run_main
from jobs.validation import classify

__all__ = ["COUNTED_COLUMNS", "countable", "main", "verdicts"]

COUNTED_COLUMNS = ("ticket_id", "type", *WINNER_ORDER)


def verdicts(kafka_df: DataFrame) -> DataFrame:
    """Each record's reason (NULL when valid) and what counting needs.

    Invalid records are dropped after collection (`countable`), not by a Spark filter:
    Spark would push a filter on `reason` below the staged projections of `classify`
    and parse each record once per field again (5x slower on 200k-record batches).
    """
    return classify(kafka_df).select("reason", *COUNTED_COLUMNS, "created_at")


def countable(batch: pa.Table) -> pa.Table:
    """The valid tickets of a collected batch of verdicts."""
    return batch.filter(pc.is_null(batch["reason"])).select(list(COUNTED_COLUMNS))


def batch_writer(settings: AggregationSettings, metrics: JobMetrics):
    """The foreachBatch function of verdicts (`verdicts`): count new tickets per type in one
    transaction."""
    transaction = BatchTransaction(settings.database_url, "aggregation", settings.db_retry_seconds)

    def write(verdicts_df: DataFrame, batch_id: int) -> None:
        clock = BatchClock()
        batch = verdicts_df.toArrow()
        if batch.num_rows == 0:
            return
        tickets = countable(batch)
        clock.spark_finished()
        metrics.batch_read(batch)
        added = transaction.run(lambda cur: count_new_tickets(cur, tickets)) if tickets.num_rows else {}
        clock.postgres_finished()
        new = sum(n for n in added.values() if n > 0)
        metrics.batch_committed(
            new=new,
            already_stored=tickets.num_rows - new,
            created_at=pc.filter(batch["created_at"], pc.is_null(batch["reason"])),
            spark_seconds=clock.spark_seconds,
            postgres_seconds=clock.postgres_seconds,
        )
        if tickets.num_rows == 0:
            return
        summary = ", ".join(f"{t} {n:+d}" for t, n in sorted(added.items())) or "nothing new"
        print(f"batch {batch_id}: {tickets.num_rows} valid tickets, {summary} {clock.summary()}", flush=True)

    return write


SPEC = JobSpec("aggregation", 4041, 9402, verdicts, batch_writer)


def main(argv: list[str] | None = None) -> int:
    return run_main(SPEC, AggregationSettings, argv)


if __name__ == "__main__":
    sys.exit(main())
