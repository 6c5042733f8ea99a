"""The enrichment job's sink: valid tickets into `tickets`, everything else a dead letter.

Executors stage the valid tickets, stamped with their enrichment time, in `tickets_staged`,
and store the records the contract rejects as dead letters at once (idempotent by Kafka
position, so a task run twice stores each once). The driver's commit upserts the staged
tickets by WINNER_ORDER; a ticket a constraint of `tickets` refuses becomes a dead letter
with its bytes read back from Kafka. See jobs.staged_sink for the protocol.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from core.components import ENRICHMENT
from core.contract import LINEAGE_NAMES, TABLES
from jobs.batch_outcomes import SAMPLE_ROWS, BatchOutcome
from jobs.dead_letters import REJECTED_COLUMNS, refused_letters, store_dead_letters
from jobs.postgres_sink import Written, upsert_tickets, write_isolating
from jobs.staged_sink import CommitContext, SinkPlan, StagedSink, Stager, sample_rows
from jobs.validation import TICKET_COLUMNS

__all__ = ["STORED_COLUMNS", "TicketsSink", "split"]

STORED_COLUMNS = (*TICKET_COLUMNS, *LINEAGE_NAMES, "enriched_at")
_SAMPLE_COLUMNS = ["ticket_id", "client_id", "type", "priority", "team", "request"]


def split(batch: pa.Table, enriched_at: datetime) -> tuple[pa.Table, pa.Table]:
    """(valid tickets stamped `enriched_at`, rejected records) of an enriched batch."""
    is_valid = pc.is_null(batch["reason"])
    valid = batch.filter(is_valid)
    stamp = pa.repeat(pa.scalar(enriched_at, pa.timestamp("us", tz="UTC")), valid.num_rows)
    valid = valid.append_column("enriched_at", stamp).select(list(STORED_COLUMNS))
    rejected = batch.filter(pc.invert(is_valid)).select(list(REJECTED_COLUMNS))
    return valid, rejected


class TicketsPlan(SinkPlan):
    job = ENRICHMENT.name
    staged_tables = (TABLES.tickets_staged,)
    latency_table = TABLES.tickets_staged

    def stage(self, stager: Stager, batch: pa.Table) -> None:
        valid, rejected = split(batch, datetime.now(UTC))
        refused = stager.stage(TABLES.tickets_staged, valid)
        part = stager.part
        part.rejected_new += store_dead_letters(stager.cur, rejected)
        if refused:
            part.refused += len(refused)
            letters = refused_letters(stager.options.topic, valid, refused, stager.reader)
            part.rejected_new += store_dead_letters(stager.cur, letters)
        room = min(stager.options.console_rows, SAMPLE_ROWS) - len(part.rejected_sample)
        if room > 0 and rejected.num_rows:
            part.rejected_sample += (
                rejected.slice(0, room)
                .select(["kafka_topic", "kafka_partition", "kafka_offset", "reason"])
                .to_pylist()
            )

    def commit(self, context: CommitContext, outcome: BatchOutcome) -> None:
        tickets = context.rows(TABLES.tickets_staged)
        parts, refused = write_isolating(
            context.cur, tickets, lambda cur, rows: upsert_tickets(cur, rows, list(STORED_COLUMNS))
        )
        written = Written(sum(p.inserted for p in parts), sum(p.replaced for p in parts))
        outcome.new, outcome.replaced = written
        outcome.refused += len(refused)
        outcome.rejected_new += context.store_refused(tickets, refused)
        outcome.sample = sample_rows(context.cur, tickets, _SAMPLE_COLUMNS, context.options.console_rows)


class TicketsSink(StagedSink):
    """writeStream.format("ticket_pipeline_tickets"): the enrichment job's sink."""

    plan = TicketsPlan

    @classmethod
    def name(cls) -> str:
        return "ticket_pipeline_tickets"
