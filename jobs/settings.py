"""Settings of the two Spark jobs."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from core.components import SPARK_JOBS
from core.settings import (
    LOCAL_DIR,
    DatabaseSettings,
    KafkaSettings,
    MetricsSettings,
    ProgressSettings,
    at_least,
    one_of,
    setting,
)

__all__ = ["AggregationSettings", "EnrichmentSettings", "JobSettings"]

# Where a Delta table may live: a local folder for now (object stores come with their
# storage options, EnrichmentSettings.delta_storage_options).
_DELTA_SCHEMES = ("", "file")


def _local_table_uri(value: str) -> str | None:
    scheme = urlsplit(value).scheme
    if scheme not in _DELTA_SCHEMES:
        return f"must be a local folder (or empty): {scheme}:// tables are not supported yet"
    return None


@dataclass(frozen=True, kw_only=True)
class JobSettings(KafkaSettings, DatabaseSettings, ProgressSettings, MetricsSettings):
    """What both streaming jobs share."""

    spark_master: str = setting(
        "SPARK_MASTER",
        "--spark-master",
        "local[*,4]",
        "Spark master; ignored when spark-submit already set one (Kubernetes). The default runs"
        " a task up to 4 times, as Spark on a cluster does (a task that lost PostgreSQL runs again)",
    )
    checkpoint_dir: str = setting(
        "CHECKPOINT_DIR",
        "--checkpoint-dir",
        "",
        "Checkpoint folder (or URL) of the query; empty = .local/run/checkpoints/<job>",
    )
    ui_port: int = setting(
        "SPARK_UI_PORT",
        "--ui-port",
        0,
        "Spark UI port; 0 = the job's default (" + ", ".join(f"{j.name} {j.port}" for j in SPARK_JOBS) + ")",
        at_least(0),
    )
    trigger_interval_seconds: float = setting(
        "TRIGGER_INTERVAL_SECONDS",
        "--trigger-interval-seconds",
        0.5,
        "Micro-batch trigger interval; 0 = as soon as the previous batch ends",
        at_least(0),
    )
    max_offsets_per_trigger: int = setting(
        "MAX_OFFSETS_PER_TRIGGER",
        "--max-offsets-per-trigger",
        200_000,
        "Most Kafka records read per micro-batch (the executors stream them to PostgreSQL: no"
        " batch is held in memory whole)",
        at_least(1),
    )
    starting_offsets: str = setting(
        "STARTING_OFFSETS",
        "--starting-offsets",
        "earliest",
        "Where a new checkpoint starts reading the topic",
        one_of("earliest", "latest"),
    )
    consumer_group: str = setting(
        "CONSUMER_GROUP",
        "--consumer-group",
        "",
        "Kafka consumer group the processed offsets are mirrored to; empty = the job's ("
        + ", ".join(f"{j.name} {j.consumer_group}" for j in SPARK_JOBS)
        + ")",
    )
    jars_dir: str = setting(
        "SPARK_JARS_DIR",
        "--jars-dir",
        str(LOCAL_DIR / "jars" / "spark"),
        "Folder of extra jars (Kafka connector) for local runs; ignored when missing",
    )
    driver_memory: str = setting(
        "SPARK_DRIVER_MEMORY", "--driver-memory", "1g", "Driver JVM heap in local runs"
    )
    java_options: str = setting(
        "SPARK_JAVA_OPTIONS",
        "--java-options",
        "-XX:TieredStopAtLevel=1",
        "JVM options of the driver in local runs; the default JIT-compiles with C1 only"
        " (README, Performance: a third of the CPU went to C2 compiling Spark's planner)",
    )
    db_retry_seconds: float = setting(
        "DATABASE_RETRY_SECONDS",
        "--database-retry-seconds",
        120.0,
        "How long a batch retries an unavailable PostgreSQL (with backoff) before the job fails",
        at_least(0),
    )


@dataclass(frozen=True, kw_only=True)
class EnrichmentSettings(JobSettings):
    """Validate, route and store every ticket; reject invalid records with their reason."""

    console_rows: int = setting(
        "CONSOLE_ROWS", "--console-rows", 5, "Enriched tickets printed per micro-batch", at_least(0)
    )
    rejected_retention_days: float = setting(
        "REJECTED_RETENTION_DAYS",
        "--rejected-retention-days",
        30.0,
        "Dead letters (tickets_rejected) older than this are deleted, once an hour; 0 = kept for ever",
        at_least(0),
    )
    delta_table_uri: str = setting(
        "DELTA_TABLE_URI",
        "--delta-table-uri",
        "",
        "Folder of the Delta Lake table of enriched tickets, written by a second query of the job;"
        " empty = no Delta table (make run sets <RUN_DATA_DIR>/delta/tickets)",
        _local_table_uri,
    )
    delta_trigger_interval_seconds: float = setting(
        "DELTA_TRIGGER_INTERVAL_SECONDS",
        "--delta-trigger-interval-seconds",
        10.0,
        "Micro-batch trigger interval of the Delta query: each batch is one commit (a MERGE)",
        at_least(0),
    )
    delta_compact_every_batches: int = setting(
        "DELTA_COMPACT_EVERY_BATCHES",
        "--delta-compact-every-batches",
        100,
        "Compact the Delta table's small files, then vacuum it, every this many micro-batches"
        " of the Delta query; 0 = never",
        at_least(0),
    )
    delta_vacuum_retention_hours: int = setting(
        "DELTA_VACUUM_RETENTION_HOURS",
        "--delta-vacuum-retention-hours",
        168,
        "The vacuum deletes the files that the Delta table stopped using longer ago than this:"
        " a reader of an older version needs them until then",
        at_least(0),
    )

    def delta_storage_options(self) -> dict[str, str]:
        """delta-rs's storage options of DELTA_TABLE_URI: none for a local folder, the only
        kind supported so far (an object store's endpoint, region and credentials go here)."""
        return {}


@dataclass(frozen=True, kw_only=True)
class AggregationSettings(JobSettings):
    """Keep the number of tickets per type, updated every micro-batch."""
