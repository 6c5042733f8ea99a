"""`make bench` end to end on a small load: every contender measured, every file written.

The figures of so small a run mean nothing and are not checked (timing belongs in the
bench itself); what is checked is that the bench completes, finds no missing or doubled
row, and reports every baseline and the profile of the drain.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.settings import REPO_ROOT
from scripts.bench.__main__ import WrongResults, check_exact
from scripts.bench.profile import batch_phases, batch_times
from scripts.bench.report import targets
from scripts.bench.stack import BenchStack

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


def test_batch_phases_read_the_last_sums_a_job_logged(tmp_path):
    log = tmp_path / "enrichment.log"
    log.write_text(
        "x INFO jobs.progress: enrichment: ms by batch phase, 1 batches: addBatch=50 walCommit=7\n"
        "x INFO jobs.progress: enrichment: ms by batch phase, 3 batches: addBatch=90 walCommit=20\n"
    )
    assert batch_phases(log) == {"batches": 3, "addBatch": 90, "walCommit": 20}


def test_batch_times_sum_the_batch_lines_of_a_job_log(tmp_path):
    log = tmp_path / "enrichment.log"
    log.write_text(
        "batch 0: 10 valid (10 new), 0 rejected (0 new) in 1.50s (spark 1.00s, postgres 0.50s)\n"
        "  a sample line\n"
        "batch 1: 5 valid tickets, question +5 in 0.25s (spark 0.20s, postgres 0.05s)\n"
    )
    assert batch_times(log) == {
        "batches": 2,
        "rows": 15,
        "seconds": 1.8,
        "spark_seconds": 1.2,
        "postgres_seconds": 0.6,
    }


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
