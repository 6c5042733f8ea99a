"""The enrichment's second query: every valid ticket into the Delta Lake table, exactly once.

It runs in the enrichment's Spark application (no other JVM) on a checkpoint of its own,
<CHECKPOINT_DIR>/delta, and reads the topic with the enrichment's own projection
(jobs.enrichment.enrich), so it stores the tickets that `tickets` stores. Each micro-batch,
on the driver (foreachBatch): the batch's valid tickets as Arrow (`toArrow`), then one MERGE
into the table whose commit carries the query's id and the batch id (jobs.delta_table); every
DELTA_COMPACT_EVERY_BATCHES batches, a compaction and a vacuum. The driver holds one batch's
valid tickets at a time, at most MAX_OFFSETS_PER_TRIGGER of them.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from core.components import ENRICHMENT
from core.contract import LINEAGE_NAMES
from core.settings import SettingError
from jobs.delta_table import DeltaWrite, TableMismatch, TicketsTable
from jobs.settings import EnrichmentSettings
from jobs.staged_sink import QUERY_ID_PROPERTY
from jobs.validation import TICKET_COLUMNS

__all__ = ["CHECKPOINT_SUBDIR", "QUERY_NAME", "DeltaQuery", "delta_query", "valid_tickets"]

logger = logging.getLogger(__name__)

QUERY_NAME = f"{ENRICHMENT.name}-delta"
# Inside the job's checkpoint folder (its volume on Kubernetes), beside Spark's own files.
CHECKPOINT_SUBDIR = "delta"


def valid_tickets(enriched: DataFrame) -> DataFrame:
    """The valid tickets of the enrichment's projected rows (jobs.enrichment.enrich), with the
    columns that the Delta table stores before its own (enriched_at, the day)."""
    return enriched.where(F.col("reason").isNull()).select(*TICKET_COLUMNS, *LINEAGE_NAMES)


class DeltaQuery:
    """The Delta query of the enrichment: its table (opened, or created empty, at once), its
    checkpoint and its compaction schedule."""

    def __init__(self, settings: EnrichmentSettings, checkpoint_dir: str) -> None:
        try:
            self.table = TicketsTable(settings.delta_table_uri, settings.delta_storage_options())
        except TableMismatch as e:
            raise SettingError(f"invalid setting --delta-table-uri / DELTA_TABLE_URI: {e}") from e
        self.checkpoint_dir = checkpoint_dir
        self.trigger_interval_seconds = settings.delta_trigger_interval_seconds
        self.compact_every_batches = settings.delta_compact_every_batches
        self.vacuum_retention_hours = settings.delta_vacuum_retention_hours

    def start(self, stream: DataFrame) -> StreamingQuery:
        """Start the query on the job's projected rows (valid tickets and rejected records)."""
        return (
            valid_tickets(stream)
            .writeStream.queryName(QUERY_NAME)
            .foreachBatch(self._on_batch)
            .option("checkpointLocation", self.checkpoint_dir)
            .trigger(processingTime=f"{self.trigger_interval_seconds:g} seconds")
            .start()
        )

    def _on_batch(self, batch: DataFrame, batch_id: int) -> None:
        # foreachBatch runs on the query's thread, whose local properties name the query; its
        # id, kept by the checkpoint, is the table's application id: a new checkpoint re-reads
        # the topic under a new id, and the MERGE stores nothing twice.
        app_id = batch.sparkSession.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)
        self.write_batch(batch, batch_id, app_id)

    def write_batch(self, batch: DataFrame, batch_id: int, app_id: str) -> DeltaWrite:
        """Write one micro-batch of valid tickets to the table, unless `app_id` already
        committed `batch_id`; compact when the schedule says so."""
        started = time.monotonic()
        # A replayed batch is skipped before its rows are collected to the driver.
        if self.table.holds(app_id, batch_id):
            logger.info(
                "%s batch %d: already in the table (a replay after a restart), skipped", QUERY_NAME, batch_id
            )
            return DeltaWrite(0, 0, 0, skipped=True, version=self.table.version())
        written = self.table.write(batch.toArrow(), app_id, batch_id, datetime.now(UTC))
        logger.info(
            "%s batch %d: %d tickets (%d new, %d replaced), table version %d, in %.2fs",
            QUERY_NAME,
            batch_id,
            written.tickets,
            written.inserted,
            written.replaced,
            written.version,
            time.monotonic() - started,
        )
        if self.compact_every_batches and (batch_id + 1) % self.compact_every_batches == 0:
            self._compact()
        return written

    def _compact(self) -> None:
        started = time.monotonic()
        done = self.table.compact(self.vacuum_retention_hours)
        logger.info(
            "%s: compacted %d files into %d, vacuumed %d, in %.2fs",
            QUERY_NAME,
            done.files_removed,
            done.files_added,
            done.files_vacuumed,
            time.monotonic() - started,
        )


def delta_query(settings: EnrichmentSettings, checkpoint_dir: str) -> DeltaQuery | None:
    """The Delta query of the enrichment whose checkpoint is `checkpoint_dir`; None when
    DELTA_TABLE_URI is empty."""
    if not settings.delta_table_uri:
        return None
    return DeltaQuery(settings, f"{checkpoint_dir.rstrip('/')}/{CHECKPOINT_SUBDIR}")
