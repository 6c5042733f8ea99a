"""The aggregation job's sink: each valid ticket counted once per ticket_id, per type.

Executors stage what counting needs of each valid ticket in `tickets_aggregation_staged`; the
driver's commit counts the batch (postgres_sink.count_tickets: the counted copy of each id is
kept, so a replay counts nothing twice and a winning copy moves its id to its type). A row
that PostgreSQL refuses, in the task's COPY or at commit, is left uncounted and becomes a
dead letter (the enrichment job stores the same position, once). See jobs.staged_sink.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from core.components import AGGREGATION
from core.contract import TABLES, WINNER_ORDER
from jobs.batch_outcomes import BatchOutcome
from jobs.dead_letters import refused_letters, store_dead_letters
from jobs.postgres_sink import count_tickets, write_isolating
from jobs.staged_sink import CommitContext, SinkPlan, StagedSink, Stager

__all__ = ["COUNTED_COLUMNS", "CountsSink", "countable"]

COUNTED_COLUMNS = ("ticket_id", "type", *WINNER_ORDER)
_STAGED_COLUMNS = [*COUNTED_COLUMNS, "created_at"]


def countable(batch: pa.Table) -> pa.Table:
    """The valid tickets of a batch of verdicts, with what counting needs."""
    return batch.filter(pc.is_null(batch["reason"])).select(_STAGED_COLUMNS)


class CountsPlan(SinkPlan):
    job = AGGREGATION.name
    staged_tables = (TABLES.aggregation_staged,)
    latency_table = TABLES.aggregation_staged

    def stage(self, stager: Stager, batch: pa.Table) -> None:
        tickets = countable(batch)
        refused = stager.stage(TABLES.aggregation_staged, tickets)
        if refused:
            stager.part.refused += len(refused)
            letters = refused_letters(stager.options.topic, tickets, refused, stager.reader)
            stager.part.rejected_new += store_dead_letters(stager.cur, letters)

    def commit(self, context: CommitContext, outcome: BatchOutcome) -> None:
        tickets = context.rows(TABLES.aggregation_staged)
        parts, refused = write_isolating(context.cur, tickets, count_tickets)
        for part in parts:
            for kind, n in part.items():
                outcome.changes[kind] = outcome.changes.get(kind, 0) + n
        outcome.changes = {kind: n for kind, n in outcome.changes.items() if n}
        outcome.new = sum(n for n in outcome.changes.values() if n > 0)
        outcome.refused += len(refused)
        outcome.rejected_new += context.store_refused(tickets, refused)


class CountsSink(StagedSink):
    """writeStream.format("ticket_pipeline_counts"): the aggregation job's sink."""

    plan = CountsPlan

    @classmethod
    def name(cls) -> str:
        return "ticket_pipeline_counts"
