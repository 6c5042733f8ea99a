"""Enrichment job: validate each ticket, route it to its team, store it in PostgreSQL.

Usage (local):  python -m jobs.enrichment [--bootstrap-servers HOST:PORT] ...
Usage (Spark):  spark-submit jobs/enrichment.py   (the image bakes the Kafka connector)

The executors stage each micro-batch's valid tickets in PostgreSQL and store the invalid
records in `tickets_rejected` with the reason and a bounded preview of their bytes; the
driver then upserts the batch into `tickets` in one transaction (of the copies of a
ticket_id, the first by WINNER_ORDER wins): jobs.tickets_sink. A sample of the enriched
tickets is printed to the log. With DELTA_TABLE_URI set, a second query of the same
application writes the same tickets to a Delta Lake table: jobs.delta_query.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.components import ENRICHMENT
from core.contract import LINEAGE_NAMES, RAW_PARTS
from core.terminal_text import escape_controls
from jobs.batch_outcomes import BatchOutcome
from jobs.batch_report import batch_line
from jobs.dead_letters import PREVIEW_BYTES
from jobs.delta_query import delta_query
from jobs.retention import DeadLetterRetention
from jobs.settings import EnrichmentSettings
from jobs.streaming import JobSpec, Reporter, run_main
from jobs.tickets_sink import TicketsSink
from jobs.validation import TICKET_COLUMNS, classify

__all__ = ["enrich", "format_rejected", "format_ticket", "main"]

_REQUEST_PREVIEW_CHARS = 70


def enrich(kafka_df: DataFrame) -> DataFrame:
    """Classify raw records: ticket columns for valid tickets; for the rest, the reason and a
    preview of the raw key and value in hex, with their sizes and sha-256 (dead_letters).

    `enriched_at` is stamped by the sink's tasks (tickets_sink.split), not with
    current_timestamp(): Spark inlines a streaming batch's timestamp into the generated
    code, so each micro-batch compiled new classes, and the JIT compiled them again.
    """
    rejected = F.col("reason").isNotNull()
    return classify(kafka_df).select(
        *TICKET_COLUMNS,
        *LINEAGE_NAMES,
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


def format_ticket(row: dict) -> str:
    """One readable console line for an enriched ticket; its request, cut to a preview, is the
    sender's text, so its control characters are shown escaped (core.terminal_text)."""
    request = row["request"]
    if len(request) > _REQUEST_PREVIEW_CHARS:
        request = request[: _REQUEST_PREVIEW_CHARS - 1] + "…"
    return escape_controls(
        f"  {row['ticket_id']} {row['client_id']} {row['type']:<8} {row['priority']:<6}"
        f" → {row['team']:<19} « {request} »"
    )


def format_rejected(row: dict) -> str:
    """One console line for a rejected record; its reason may quote the sender's text."""
    where = f"{row['kafka_topic']}/{row['kafka_partition']}@{row['kafka_offset']}"
    return escape_controls(f"  REJECTED {where}: {row['reason']}")


def reporter(settings: EnrichmentSettings) -> Reporter:
    """What the driver does with each committed batch: print it and a sample of its tickets,
    and prune the expired dead letters when due."""
    retention = DeadLetterRetention(
        settings.database_url, settings.rejected_retention_days, settings.statement_timeout_seconds
    )

    def report(outcome: BatchOutcome) -> None:
        replaced = f", {outcome.replaced} replaced" if outcome.replaced else ""
        refusals = f", {outcome.refused} refused by PostgreSQL" if outcome.refused else ""
        details = f"{replaced}, {outcome.rejected} rejected ({outcome.rejected_new} new){refusals}"
        print(batch_line(outcome, details), flush=True)
        retention.prune_if_due()
        shown = outcome.sample[: settings.console_rows]
        for row in shown:
            print(format_ticket(row), flush=True)
        if outcome.valid > len(shown) and shown:
            print(f"  … and {outcome.valid - len(shown)} more", flush=True)
        for row in outcome.rejected_sample[: settings.console_rows]:
            print(format_rejected(row), flush=True)

    return report


SPEC = JobSpec(ENRICHMENT, enrich, TicketsSink, reporter, delta_query)


def main(argv: list[str] | None = None) -> int:
    return run_main(SPEC, EnrichmentSettings, argv)


if __name__ == "__main__":
    sys.exit(main())
