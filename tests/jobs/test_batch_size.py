"""A micro-batch never holds more than fits in the driver: rows are bounded by the contract."""

from __future__ import annotations

import pytest

from core.contract import MAX_REQUEST_CHARS
from core.settings import SettingError
from jobs import aggregation, enrichment
from jobs.batch_size import (
    BATCH_MEMORY_SHARE,
    TASK_RESULT_BYTES,
    WorstRow,
    fitting_records,
    records_per_batch,
    records_per_task,
)
from jobs.dead_letters import PREVIEW_BYTES
from tests.core.strategies import with_
from tests.jobs.test_pipeline import job_settings
from tests.jobs.test_validation import KAFKA_SCHEMA

GIB = 2**30

# The largest rows each kind of record makes: a ticket at its longest; records far larger
# than the previews, with a large key, a long type or a long field name.
WORST_RECORDS = [
    (b"k" * 100, with_(request="😀" * MAX_REQUEST_CHARS)),
    (b"k" * 100, with_(request="\U0010ffff" * MAX_REQUEST_CHARS, type="incident")),
    (b"k" * 60_000, b"x" * 300_000),
    (b"k" * 60_000, with_(type="😀" * 15_000)),
    (b"k" * 60_000, with_(**{"😀" * 15_000: 1})),
    (b"k" * 60_000, with_(request="😀" * (MAX_REQUEST_CHARS + 1))),
]


def test_no_collected_row_is_larger_than_the_jobs_worst_row(spark, tmp_path):
    """The rows that each job collects of the largest records stay within its WorstRow."""
    frame = spark.createDataFrame(
        [(key, value, "client_tickets", 0, i, None) for i, (key, value) in enumerate(WORST_RECORDS)],
        KAFKA_SCHEMA,
    )
    settings = job_settings(enrichment, "localhost:9", "client_tickets", "postgresql://x/y", tmp_path)
    for module, worst in (
        (enrichment, enrichment.worst_row_bytes(settings)),
        (aggregation, WorstRow.verdict()),
    ):
        batch = module.SPEC.projection(frame).toArrow()
        sizes = [batch.slice(i, 1).nbytes for i in range(batch.num_rows)]
        assert max(sizes) <= worst, (module.SPEC.name, sizes, worst)
    assert WorstRow.rejected("client_tickets", PREVIEW_BYTES) > 4 * PREVIEW_BYTES


def test_the_default_takes_as_many_records_as_fit_and_a_larger_value_fails_at_start(spark):
    """0 gives a quarter of the driver's memory over the worst row; more fails, naming the
    setting and the driver's memory."""
    worst = WorstRow.ticket("client_tickets")
    fitting = fitting_records(GIB, GIB, worst)  # the test session runs with Spark's 1g
    assert fitting == int(BATCH_MEMORY_SHARE * GIB) // worst
    assert records_per_batch(spark, worst, 0) == fitting
    assert records_per_batch(spark, worst, 150) == 150
    with pytest.raises(SettingError, match=r"MAX_OFFSETS_PER_TRIGGER=16000 .*spark\.driver\.memory=1g"):
        records_per_batch(spark, worst, 16_000)


def test_the_result_size_limit_bounds_the_batch_too():
    """spark.driver.maxResultSize below the memory bounds the batch; 0 means no limit."""
    assert fitting_records(4 * GIB, GIB, 1000) == fitting_records(GIB, GIB, 1000)
    assert fitting_records(GIB, 0, 1000) == fitting_records(GIB, GIB, 1000)


def test_a_task_never_collects_more_than_its_share():
    """Each Spark task reads at most records_per_task records: TASK_RESULT_BYTES at worst."""
    for worst in (WorstRow.ticket("client_tickets"), WorstRow.verdict(), TASK_RESULT_BYTES * 3):
        per_task = records_per_task(worst)
        assert per_task >= 1
        assert per_task * worst <= TASK_RESULT_BYTES or per_task == 1
        assert (per_task + 1) * worst > TASK_RESULT_BYTES
