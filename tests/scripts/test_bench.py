"""`make bench` end to end on a small load: every contender measured, every file written.

The figures of so small a run mean nothing and are not checked (timing belongs in the
bench itself); what is checked is that the bench completes, finds no missing or doubled
row, and reports every baseline and the profile of the drain. The two contenders that do
not write like ours (the Spark floor, quix-streams) are also run alone on a small topic.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import KafkaException

from core.contract import team_for
from core.metrics import serve_metrics
from core.postgres import connection
from core.settings import REPO_ROOT
from dashboard.lag import LagReader
from jobs.batch_outcomes import BatchOutcome
from jobs.metrics import JobMetrics
from producer.generator import TicketGenerator, ticket_id_of
from scripts.bench.__main__ import (
    PYTHON,
    QUIX_PYTHON,
    WrongResults,
    check_exact,
    progress_drain,
    read_progress,
    start,
    stop,
    wait_for_input_rows,
)
from scripts.bench.profile import batch_phases, batch_times
from scripts.bench.report import markdown, targets
from scripts.bench.stack import BenchStack
from scripts.embedded.ports import free_port
from tests.jobs.test_pipeline import produce

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
    for contender in ("producer", "ours", "plain_consumer", "quix", "naive_spark", "spark_floor", "raw_copy"):
        assert results[contender]["rows_per_second"] > 0, contender
        assert results[contender]["rows"] == 2000, contender
    assert set(results["ours"]["cpu_seconds"]) == {"broker", "postgres", "enrichment", "aggregation"}
    assert set(results["spark_floor"]["cpu_seconds"]) == {"broker", "postgres", "spark"}
    assert set(results["quix"]["cpu_seconds"]) == {"broker", "postgres", "consumer"}
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
        "quix-streams PostgreSQLSink (tickets only",
        "the Spark floor (",
        "× the Spark floor |",
        "raw COPY",
        "Where the time goes",
        "Targets",
    ):
        assert label in table
    assert (out / "latest.png").read_bytes()[:4] == b"\x89PNG"


def test_the_profile_reads_a_jobs_batches_and_phases_from_its_metrics():
    """batch_times and batch_phases read what a job's JobMetrics serve over HTTP: batches,
    valid rows, the seconds of the tasks and of the commit, and Spark's phases in milliseconds."""
    metrics = JobMetrics("enrichment")
    url = serve_metrics(metrics.registry, free_port(), "enrichment", "127.0.0.1")
    for batch_id, (rows, tasks, commit) in enumerate(((10, 1.0, 0.5), (5, 0.2, 0.05))):
        metrics.batch_committed(
            BatchOutcome(
                job="enrichment",
                batch_id=batch_id,
                read=rows,
                valid_by_type={"question": rows},
                new=rows,
                tasks_seconds=tasks,
                commit_seconds=commit,
            )
        )
    metrics.batch_phases({"addBatch": 50, "walCommit": 7})
    metrics.batch_phases({"addBatch": 40, "walCommit": 13})
    assert batch_times(url) == {
        "batches": 2,
        "rows": 15,
        "seconds": 1.8,
        "tasks_seconds": 1.2,
        "commit_seconds": 0.6,
    }
    assert batch_phases(url) == {"batches": 2, "addBatch": 90, "walCommit": 20}


def _results() -> dict:
    """The results of a bench run of 1,000 tickets as the bench writes them, in round figures."""
    latency = {"p50": 0.5, "p95": 0.8, "p99": 0.9, "max": 1.0}
    return {
        "when": "2026-01-01T00:00:00+00:00",
        "machine": "2 cores, 8 GiB, Linux",
        "settings": {"tickets": 1000},
        "producer": {"rows": 1000, "seconds": 0.5, "rows_per_second": 2000.0},
        "ours": {
            "rows": 1000,
            "seconds": 1.1,
            "rows_per_second": 900.0,
            "aggregation_exact_seconds": 1.5,
            "cpu_seconds": {"broker": 1.0, "postgres": 2.0, "enrichment": 6.0, "aggregation": 4.0},
            "cpu_microseconds_per_ticket": {"enrichment": 25.0, "aggregation": 19.0},
        },
        "plain_consumer": {
            "rows": 1000,
            "seconds": 1.0,
            "rows_per_second": 1000.0,
            "cpu_seconds": {"consumer": 6.0, "postgres": 2.0},
        },
        "quix": {
            "rows": 1000,
            "seconds": 2.0,
            "rows_per_second": 500.0,
            "cpu_seconds": {"broker": 1.0, "postgres": 1.5, "consumer": 4.0},
        },
        "naive_spark": {
            "rows": 1000,
            "seconds": 4.0,
            "rows_per_second": 250.0,
            "cpu_seconds": {"broker": 1.0, "postgres": 3.0, "spark": 9.0},
        },
        "spark_floor": {
            "rows": 1000,
            "seconds": 0.9,
            "rows_per_second": 1100.0,
            "batches": 2,
            "cpu_seconds": {"broker": 1.0, "postgres": 0.0, "spark": 7.0},
            "cpu_microseconds_per_ticket": 12.0,
        },
        "raw_copy": {"rows": 1000, "seconds": 0.1, "rows_per_second": 10000.0},
        "latency": [
            {
                "rate": 1000,
                "achieved_rate": 999.0,
                "tickets": latency,
                "aggregation": {**latency, "p99": 1.5},
            },
            {
                "rate": 10000,
                "achieved_rate": 9500.0,
                "tickets": latency,
                "aggregation": latency,
                "last_10s": {"tickets": latency, "aggregation": {**latency, "p99": 3.5}},
            },
        ],
    }


def test_targets_are_judged_against_the_same_runs_baselines():
    """Each target is met or missed by this run's figures, never by fixed throughput numbers."""
    verdicts = {target: met for target, _figure, met in targets(_results())}
    assert verdicts == {
        "drain into `tickets` ≥ 1.0× the plain consumer": False,
        "drain into `tickets` ≥ 0.8× the Spark floor": True,
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


def test_the_report_shows_the_spark_floor_and_quix_streams_beside_ours():
    """latest.md gives both new contenders a Drain row with their ratio to ours and a CPU row,
    judges our drain against the Spark floor, and puts the floor's CPU per ticket beside the
    enrichment job's."""
    results = _results()
    results["spark_floor"]["rows_per_second"] = 1250.0
    report = markdown(results)
    floor = "the Spark floor (our Kafka read and validation, noop sink: no PostgreSQL)"
    quix = "quix-streams PostgreSQLSink (tickets only, no aggregation)"
    for row in (
        f"| {quix} | 500 | 0.56× | 2.0 |",
        f"| {floor} | 1,250 | 1.39× | 0.9 |",
        f"| {quix} | 2.0 | broker 1.0, postgres 1.5, consumer 4.0 |",
        f"| {floor} | 0.9 | broker 1.0, postgres 0.0, spark 7.0 |",
        "| drain into `tickets` ≥ 0.8× the Spark floor | 900/s vs 1,250/s: 0.72× | **missed** |",
        "| CPU per ticket, enrichment (drain, start-up excluded) ≤ 20 µs"
        " | 25 µs (the Spark floor: 12 µs) | **missed** |",
    ):
        assert row in report.splitlines(), row


def test_the_spark_floors_drain_runs_from_its_first_batch_start_to_its_last_batch_end():
    """The floor's seconds come from its progress events: the start (trigger time) of the first
    batch that read rows to the end (start + batchDuration) of the last; empty batches do not
    count."""
    batches = [
        {"batchId": 0, "timestamp": "2026-01-01T00:00:00.000Z", "batchDuration": 300, "numInputRows": 0},
        {"batchId": 1, "timestamp": "2026-01-01T00:00:01.000Z", "batchDuration": 1500, "numInputRows": 600},
        {"batchId": 2, "timestamp": "2026-01-01T00:00:02.500Z", "batchDuration": 500, "numInputRows": 400},
        {"batchId": 3, "timestamp": "2026-01-01T00:00:09.000Z", "batchDuration": 100, "numInputRows": 0},
    ]
    assert progress_drain(batches) == {"rows": 1000, "seconds": 2.0, "rows_per_second": 500.0, "batches": 2}


def test_the_spark_floor_reads_every_record_of_the_topic_into_the_noop_sink(
    kafka_connection, kafka_env, topic, tmp_path
):
    """The Spark floor runs the enrichment job's stream (with the job's settings, here smaller
    batches) into the noop sink: its progress counts every record of the topic, valid or not,
    over several micro-batches, and the bench fails loudly on any other count."""
    records = [*TicketGenerator(seed=7).batch(300), (b"CLI-000001", b"not json"), (b"CLI-000002", None)]
    produce(kafka_connection, topic, records)
    progress_file = tmp_path / "progress.jsonl"
    process = start(
        [
            PYTHON, "-m", "scripts.bench.spark_floor",
            "--progress-file", str(progress_file),
            "--topic", topic,
            "--ui-port", str(free_port()),
            "--trigger-interval-seconds", "0",
            "--max-offsets-per-trigger", "100",
        ],
        dict(os.environ, **kafka_env),
        tmp_path / "floor.log",
    )  # fmt: skip
    try:
        wait_for_input_rows(progress_file, len(records), process, timeout=300)
    finally:
        stop(process)
    assert process.returncode == 0, (tmp_path / "floor.log").read_text()[-3000:]
    drain = progress_drain(read_progress(progress_file))
    assert drain["rows"] == len(records)
    assert drain["batches"] >= 4 and drain["seconds"] > 0
    with pytest.raises(WrongResults, match="doubled"):
        wait_for_input_rows(progress_file, len(records) - 1, process)
    with pytest.raises(WrongResults, match="exited"):
        wait_for_input_rows(progress_file, len(records) + 1, process)


def _columns(database_url: str) -> list[tuple]:
    with connection(database_url, application_name="tests") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_name = 'tickets' ORDER BY ordinal_position"
        )
        return cur.fetchall()


def test_quix_streams_stores_each_valid_ticket_once_into_the_existing_tickets_table(
    kafka_connection, kafka_env, topic, database_url, tmp_path
):
    """The quix-streams contender validates and enriches like the jobs and stores each valid
    ticket once with quixstreams' PostgreSQLSink, into `tickets` as our schema made it: a
    resent record is not stored twice, an invalid one not at all, and no column is added or
    changed. Its offsets are committed once the sink has written (lag 0), and it stops cleanly."""
    tickets = TicketGenerator(seed=3).batch(200)
    records = [*tickets, *tickets[:5], (b"CLI-000001", b"not json")]
    produce(kafka_connection, topic, records)
    schema = _columns(database_url)
    group = f"quix-{topic}"
    if not QUIX_PYTHON.exists():
        pytest.fail(f"{QUIX_PYTHON} is missing: run `make test` (it creates it: `make quix`)")
    process = start(
        [
            str(QUIX_PYTHON), "-m", "scripts.bench.quix_consumer",
            "--bootstrap-servers", kafka_connection.bootstrap_servers,
            "--topic", topic,
            "--database-url", database_url,
            "--consumer-group", group,
        ],
        dict(os.environ, **kafka_env),
        tmp_path / "quix.log",
    )  # fmt: skip
    reader, deadline, lag = LagReader(kafka_connection, topic, 10), time.monotonic() + 120, None
    try:
        while lag != 0 and time.monotonic() < deadline:
            # A new group's first offset request may be answered NOT_COORDINATOR: ask again.
            with contextlib.suppress(KafkaException):
                lag = reader.read([group])[group]
            time.sleep(0.5)
    finally:
        stop(process)
    log = (tmp_path / "quix.log").read_text()[-3000:]
    assert lag == 0 and process.returncode == 0, log
    with connection(database_url, application_name="tests") as conn, conn.cursor() as cur:
        cur.execute("SELECT ticket_id::text, type, team, kafka_topic, enriched_at FROM tickets")
        rows = cur.fetchall()
    assert sorted(r[0] for r in rows) == sorted(ticket_id_of(value) for _key, value in tickets)
    assert all(team == team_for(kind) and stored_topic == topic for _, kind, team, stored_topic, _ in rows)
    assert all(enriched_at is not None for *_, enriched_at in rows)
    assert _columns(database_url) == schema


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
