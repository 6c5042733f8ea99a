"""`make bench` end to end on a small load: every contender measured, every file written.

The figures of so small a run mean nothing and are not checked (timing belongs in the
bench itself); what is checked is that the bench completes, finds no missing or doubled
row, and reports every baseline and the profile of the drain.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from core.metrics import serve_metrics
from core.settings import REPO_ROOT
from jobs.metrics import JobMetrics
from scripts.bench.__main__ import WrongResults, check_exact
from scripts.bench.profile import batch_phases, batch_times
from scripts.bench.report import targets
from scripts.bench.stack import BenchStack
from scripts.embedded.ports import free_port

pytestmark = pytest.mark.integration


def test_the_bench_measures_every_contender_and_writes_its_report(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable, "-m", "scripts.bench",
            "--tickets", "2000", "--rates", "200", "--latency-seconds", "5", "--warmup-seconds", "3",
            "--out-dir", str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "[bench +" in run.stdout  # progress lines
    results = json.loads((out / "latest.json").read_text())
    for contender in ("producer", "ours", "plain_consumer", "naive_spark", "raw_copy"):
        assert results[contender]["rows_per_second"] > 0, contender
        assert results[contender]["rows"] == 2000, contender
    assert set(results["ours"]["cpu_seconds"]) == {"broker", "postgres", "enrichment", "aggregation"}
    assert {job: b["rows"] for job, b in results["ours"]["batches"].items()} == {
        "enrichment": 2000,
        "aggregation": 2000,
    }
    assert results["ours"]["top_statements"], "pg_stat_statements gave nothing"
    assert set(results["ours"]["cpu_microseconds_per_ticket"]) == {"enrichment", "aggregation"}
    for job, phases in results["ours"]["phases_ms"].items():
        assert phases["batches"] >= 1 and phases["addBatch"] > 0, job
    [latency] = results["latency"]
    assert latency["tickets"]["tickets"] == latency["aggregation"]["tickets"] == 1000
    table = (out / "latest.md").read_text()
    for label in (
        "ours (Spark",
        "plain Python consumer",
        "naive Spark JDBC",
        "raw COPY",
        "Where the time goes",
        "Targets",
    ):
        assert label in table
    assert (out / "latest.png").read_bytes()[:4] == b"\x89PNG"


def test_the_profile_reads_a_jobs_batches_and_phases_from_its_metrics():
    """batch_times and batch_phases read what a job's JobMetrics serve over HTTP: batches,
    valid rows, the Spark and PostgreSQL seconds, and Spark's phases in milliseconds."""
    metrics = JobMetrics("enrichment")
    url = serve_metrics(metrics.registry, free_port(), "enrichment")
    now = pa.chunked_array([pa.array([datetime.now(UTC)] * 10, pa.timestamp("us", tz="UTC"))])
    verdicts = pa.table({"reason": pa.array([None] * 15, pa.string()), "type": ["question"] * 15})
    metrics.batch_read(verdicts.slice(0, 10))
    metrics.batch_committed(new=10, already_stored=0, created_at=now, spark_seconds=1.0, postgres_seconds=0.5)
    metrics.batch_read(verdicts.slice(0, 5))
    metrics.batch_committed(
        new=5, already_stored=0, created_at=now.slice(0, 5), spark_seconds=0.2, postgres_seconds=0.05
    )
    metrics.batch_phases({"addBatch": 50, "walCommit": 7})
    metrics.batch_phases({"addBatch": 40, "walCommit": 13})
    assert batch_times(url) == {
        "batches": 2,
        "rows": 15,
        "seconds": 1.8,
        "spark_seconds": 1.2,
        "postgres_seconds": 0.6,
    }
    assert batch_phases(url) == {"batches": 2, "addBatch": 90, "walCommit": 20}


def test_targets_are_judged_against_the_same_runs_baselines():
    """Each target is met or missed by this run's figures, never by fixed throughput numbers."""
    latency = {"p50": 0.5, "p95": 0.8, "p99": 0.9, "max": 1.0}
    results = {
        "settings": {"tickets": 1000},
        "ours": {
            "rows_per_second": 900.0,
            "cpu_seconds": {"broker": 1.0, "postgres": 2.0, "enrichment": 6.0, "aggregation": 4.0},
            "cpu_microseconds_per_ticket": {"enrichment": 25.0, "aggregation": 19.0},
        },
        "plain_consumer": {"rows_per_second": 1000.0, "cpu_seconds": {"consumer": 6.0, "postgres": 2.0}},
        "latency": [
            {"rate": 1000, "tickets": latency, "aggregation": {**latency, "p99": 1.5}},
            {
                "rate": 10000,
                "tickets": latency,
                "aggregation": latency,
                "last_10s": {"tickets": latency, "aggregation": {**latency, "p99": 3.5}},
            },
        ],
    }
    verdicts = {target: met for target, _figure, met in targets(results)}
    assert verdicts == {
        "drain into `tickets` ≥ 1.0× the plain consumer": False,
        "CPU-seconds for 1,000 tickets (jobs, broker, PostgreSQL, start-up included)"
        " ≤ 1.5× the plain consumer's": False,
        "CPU per ticket, enrichment (drain, start-up excluded) ≤ 20 µs": False,
        "CPU per ticket, aggregation (drain, start-up excluded) ≤ 20 µs": True,
        "p99 into `tickets` at 1,000/s ≤ 1 s": True,
        "p99 aggregation at 1,000/s ≤ 1 s": False,
        "p99 into `tickets` at 10,000/s ≤ 3 s": True,
        "p99 aggregation at 10,000/s ≤ 3 s": True,
        "keeps up at 10,000/s (p99 of the last 10 s ≤ 3 s)": False,
    }


@pytest.fixture
def bench_database():
    """The bench's own PostgreSQL (no broker), with one fresh database of the schema."""
    stack = BenchStack()
    stack.postgres.start()
    try:
        owner, _writer = stack.database("audit")
        yield stack, owner
    finally:
        stack.postgres.stop()
        stack.postgres.delete_files()


def test_the_bench_fails_loudly_on_a_missing_row_or_a_wrong_count(bench_database):
    """check_exact raises WrongResults (exit 1) when rows are missing or counts disagree."""
    stack, url = bench_database
    with pytest.raises(WrongResults, match="0 rows in tickets, 1 expected"):
        check_exact(stack, url, 1, "ours", with_aggregation=True)
    conn = stack.connect(url)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tickets_aggregation (type, ticket_count, updated_at) VALUES ('incident', 1, now())"
        )
    conn.commit()
    conn.close()
    with pytest.raises(WrongResults, match="differs from the GROUP BY"):
        check_exact(stack, url, 0, "ours", with_aggregation=True)
