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
from scripts.bench.profile import batch_times

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
    [latency] = results["latency"]
    assert latency["tickets"]["tickets"] == latency["aggregation"]["tickets"] == 1000
    table = (out / "latest.md").read_text()
    for label in (
        "ours (Spark",
        "plain Python consumer",
        "naive Spark JDBC",
        "raw COPY",
        "Where the time goes",
    ):
        assert label in table
    assert (out / "latest.png").read_bytes()[:4] == b"\x89PNG"


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
