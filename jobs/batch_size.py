"""How many records a micro-batch may hold: as many as fit in the driver at their worst.

Each micro-batch is collected into the driver (toArrow) before it is written. The contract
bounds every collected row: a valid ticket by its fields (a request of MAX_REQUEST_CHARS
characters of 4 bytes is the largest), a rejected record by its reason and the previews of
its raw bytes (jobs.dead_letters), never by the record's own size. So a batch of N records
never holds more than N x the job's worst row, and N is chosen so that this fits in
BATCH_MEMORY_SHARE of the driver's memory and of spark.driver.maxResultSize.

A task's result is copied whole as it is serialized and received, and the driver holds
every result in flight, so one task result of the whole batch needs several times its
size (a test of 15,821 worst rows in a 1g local driver ran out of heap that way). The
Kafka source therefore splits each topic partition's share of a batch into tasks of at
most `records_per_task` records, TASK_RESULT_BYTES at worst, and toArrow hands each
result on to Python as it arrives.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from core.contract import FIELDS, QUOTE_CHARS, TYPE_TEAMS
from core.settings import SettingError

__all__ = [
    "BATCH_MEMORY_SHARE",
    "TASK_RESULT_BYTES",
    "WorstRow",
    "fitting_records",
    "records_per_batch",
    "records_per_task",
]

# The share of the driver's heap (and of maxResultSize) that one collected batch may take:
# the JVM holds the Arrow batches, and the Python side a copy and its CSV for COPY.
BATCH_MEMORY_SHARE = 0.25
# The most that one task's collected result may hold at worst.
TASK_RESULT_BYTES = 16 * 2**20
_UTF8_MAX = 4
_ARROW_VALUE = 4 + 1  # a string's offset, and the validity bits rounded up
_FIXED = 8  # a timestamp, an offset, a partition (padded)
_LONGEST_REASON_CHARS = 40 + QUOTE_CHARS  # a reason of core.contract.REASONS, then a quote
_SHORT_FIELD_CHARS = 36  # the longest fixed format or enum of a ticket (a UUID)
_SPARK_DEFAULT_RESULT_SIZE = "1g"


def _text(chars: int) -> int:
    return chars * _UTF8_MAX + _ARROW_VALUE


class WorstRow:
    """The largest rows a job collects, by the kinds of column they hold."""

    @staticmethod
    def ticket(topic: str) -> int:
        """A valid ticket with its team and lineage, each text at its longest."""
        fields = sum(_text(f.max_chars or _SHORT_FIELD_CHARS) for f in FIELDS)
        team = _text(max(len(t) for t in TYPE_TEAMS.values()))
        return fields + team + _text(len(topic)) + 4 * _FIXED

    @staticmethod
    def rejected(topic: str, preview_bytes: int) -> int:
        """A rejected record: its reason, position, and per raw part a hex preview, size, hash."""
        raw = 2 * (2 * preview_bytes + _ARROW_VALUE + _FIXED + 64 + _ARROW_VALUE)
        return _text(_LONGEST_REASON_CHARS) + _text(len(topic)) + 3 * _FIXED + raw

    @staticmethod
    def verdict() -> int:
        """What the aggregation collects of a record: reason, ticket_id, type, position, time."""
        return _text(_LONGEST_REASON_CHARS) + 2 * _text(_SHORT_FIELD_CHARS) + 4 * _FIXED


def fitting_records(driver_memory_bytes: int, max_result_bytes: int, worst_row_bytes: int) -> int:
    """The most records whose worst case fits BATCH_MEMORY_SHARE of the driver's memory and of
    its maxResultSize (0: unlimited)."""
    limit = min(driver_memory_bytes, max_result_bytes or driver_memory_bytes)
    return max(int(BATCH_MEMORY_SHARE * limit) // worst_row_bytes, 1)


def records_per_task(worst_row_bytes: int) -> int:
    """The most records of one Spark task (the Kafka source's maxRecordsPerPartition)."""
    return max(TASK_RESULT_BYTES // worst_row_bytes, 1)


def records_per_batch(spark: SparkSession, worst_row_bytes: int, wanted: int) -> int:
    """The records per micro-batch: `wanted`, or with 0 the most that fit; a `wanted` that
    does not fit fails at start, naming the settings."""
    conf = spark.sparkContext.getConf()
    to_bytes = spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes
    memory = to_bytes(conf.get("spark.driver.memory", "1g"))
    result_size = to_bytes(conf.get("spark.driver.maxResultSize", _SPARK_DEFAULT_RESULT_SIZE))
    fitting = fitting_records(memory, result_size, worst_row_bytes)
    if wanted == 0:
        return fitting
    if wanted > fitting:
        raise SettingError(
            f"--max-offsets-per-trigger / MAX_OFFSETS_PER_TRIGGER={wanted} does not fit the driver:"
            f" a batch of it could hold {wanted * worst_row_bytes / 2**20:,.0f} MiB at worst"
            f" ({worst_row_bytes:,} bytes a record), over {BATCH_MEMORY_SHARE:.0%} of"
            f" spark.driver.memory={conf.get('spark.driver.memory', '1g')} (SPARK_DRIVER_MEMORY locally);"
            f" use at most {fitting}, or 0 for that, or give the driver more memory"
        )
    return wanted
