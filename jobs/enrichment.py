"""Enrichment job: validate each ticket, route it to its team, store it in PostgreSQL.

Usage (local):  python -m jobs.enrichment [--bootstrap-servers HOST:PORT] ...
Usage (Spark):  spark-submit jobs/enrichment.py   (the image bakes the Kafka connector)

Every micro-batch runs one transaction: valid tickets are upserted into `tickets` (of
the copies of a ticket_id, the first by WINNER_ORDER wins), invalid records inserted
into `tickets_rejected` with the reason and raw bytes. A sample of the enriched tickets is printed to the log.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.components import ENRICHMENT
from core.contract import RAW_PARTS
from jobs.batch_report import BatchClock, batch_line
from jobs.batch_size import WorstRow
from jobs.dead_letters import (
    PREVIEW_BYTES,
    REJECTED_COLUMNS,
    RecordReader,
    refused_letters,
    store_dead_letters,
)
from jobs.metrics import JobMetrics
from jobs.postgres_sink import BatchTransaction, Written, insert_tickets, write_isolating
from jobs.retention import DeadLetterRetention
from jobs.settings import EnrichmentSettings
from jobs.streaming import JobSpec, run_main
from jobs.validation import KAFKA_COLUMNS, TICKET_COLUMNS, classify

__all__ = ["REJECTED_COLUMNS", "STORED_COLUMNS", "enrich", "main"]

STORED_COLUMNS = (*TICKET_COLUMNS, *KAFKA_COLUMNS, "enriched_at")
_REQUEST_PREVIEW_CHARS = 70


def enrich(kafka_df: DataFrame) -> DataFrame:
    """Classify raw records: ticket columns for valid tickets; for the rest, the reason and a
    preview of the raw key and value in hex, with their sizes and sha-256 (dead_letters).

    `enriched_at` is added after collection (`split`), not with current_timestamp():
    Spark inlines a streaming batch's timestamp into the generated code, so each
    micro-batch compiled new classes, and the JIT compiled them again (half the CPU).
    """
    rejected = F.col("reason").isNotNull()
    return classify(kafka_df).select(
        *TICKET_COLUMNS,
        *KAFKA_COLUMNS,
        "reason",
        *[
            F.when(rejected, column).alias(f"{part}_{what}")
            for part in RAW_PARTS
            for what, column in (
                ("hex", F.hex(F.substring(part, 1, PREVIEW_BYTES))),
                ("bytes", F.octet_length(part)),
                ("sha256", F.sha2(F.col(part), 256)),
            )
        ],
    )


def split(batch: pa.Table, enriched_at: datetime) -> tuple[pa.Table, pa.Table]:
    """(valid tickets stamped `enriched_at`, rejected records) of an enriched batch."""
    is_valid = pc.is_null(batch["reason"])
    valid = batch.filter(is_valid)
    stamp = pa.repeat(pa.scalar(enriched_at, pa.timestamp("us", tz="UTC")), valid.num_rows)
    valid = valid.append_column("enriched_at", stamp).select(list(STORED_COLUMNS))
    rejected = batch.filter(pc.invert(is_valid)).select(list(REJECTED_COLUMNS))
    return valid, rejected


def format_ticket(row: dict) -> str:
    """One readable console line for an enriched ticket."""
    request = row["request"]
    if len(request) > _REQUEST_PREVIEW_CHARS:
        request = request[: _REQUEST_PREVIEW_CHARS - 1] + "…"
    return (
        f"  {row['ticket_id']} {row['client_id']} {row['type']:<8} {row['priority']:<6}"
        f" → {row['team']:<19} « {request} »"
    )


def batch_writer(settings: EnrichmentSettings, metrics: JobMetrics):
    """The foreachBatch function of enriched records (`enrich`): store, print a sample."""
    transaction = BatchTransaction(
        settings.database_url,
        "enrichment",
        settings.db_retry_seconds,
        settings.statement_timeout_seconds,
        on_retry=metrics.database_retried,
    )
    reader = RecordReader(settings.bootstrap_servers)
    retention = DeadLetterRetention(
        settings.database_url, settings.rejected_retention_days, settings.statement_timeout_seconds
    )

    def store(cur, valid: pa.Table, rejected: pa.Table) -> tuple[Written, int, int]:
        """Tickets, rejects, and the tickets PostgreSQL refuses as dead letters: one transaction."""
        parts, refused = write_isolating(cur, valid, insert_tickets)
        written = Written(sum(p.inserted for p in parts), sum(p.replaced for p in parts))
        rejected_stored = store_dead_letters(cur, rejected)
        if refused:
            rejected_stored += store_dead_letters(
                cur, refused_letters(settings.topic, valid, refused, reader)
            )
        return written, rejected_stored, len(refused)

    def write(enriched_df: DataFrame, batch_id: int) -> None:
        clock = BatchClock()
        enriched_at = datetime.now(UTC)
        enriched = enriched_df.toArrow()
        if enriched.num_rows == 0:
            return
        valid, rejected = split(enriched, enriched_at)
        clock.spark_finished()
        metrics.batch_read(enriched)
        written, rejected_stored, refused = transaction.run(lambda cur: store(cur, valid, rejected))
        clock.postgres_finished()
        metrics.batch_committed(
            new=written.inserted,
            already_stored=valid.num_rows - refused - written.inserted,
            refused=refused,
            created_at=valid["created_at"],
            spark_seconds=clock.spark_seconds,
            postgres_seconds=clock.postgres_seconds,
        )
        replaced = f", {written.replaced} replaced" if written.replaced else ""
        refusals = f", {refused} refused by PostgreSQL" if refused else ""
        details = f"{replaced}, {rejected.num_rows} rejected ({rejected_stored} new){refusals}"
        print(batch_line(batch_id, valid.num_rows, written.inserted, details, clock), flush=True)
        retention.prune_if_due()
        for row in valid.slice(0, settings.console_rows).to_pylist():
            print(format_ticket(row), flush=True)
        if valid.num_rows > settings.console_rows > 0:
            print(f"  … and {valid.num_rows - settings.console_rows} more", flush=True)
        for row in rejected.slice(0, settings.console_rows).to_pylist():
            print(
                f"  REJECTED {row['kafka_topic']}/{row['kafka_partition']}@{row['kafka_offset']}:"
                f" {row['reason']}",
                flush=True,
            )

    return write


def worst_row_bytes(settings: EnrichmentSettings) -> int:
    """The largest row `enrich` collects: a ticket at its longest, or a rejected record."""
    return max(WorstRow.ticket(settings.topic), WorstRow.rejected(settings.topic, PREVIEW_BYTES))


SPEC = JobSpec(ENRICHMENT, enrich, batch_writer, worst_row_bytes)


def main(argv: list[str] | None = None) -> int:
    return run_main(SPEC, EnrichmentSettings, argv)


if __name__ == "__main__":
    sys.exit(main())
