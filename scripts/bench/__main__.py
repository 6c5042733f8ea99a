"""`make bench`: throughput and latency of the pipeline, side by side with baselines.

On its own broker and PostgreSQL (temporary, on free ports), on the same data:
  a. drain: N tickets preloaded, then the jobs started; tickets/s into `tickets` and
     the time until the aggregation is exact; the same drain by the baselines: a plain
     Python consumer, the naive Spark JDBC append, the Spark floor (our Kafka read and
     validation into Spark's noop sink), quix-streams with its PostgreSQLSink, and a raw
     COPY of the same rows;
  b. latency under steady load (default 1,000 and 10,000 tickets/s): stored_at - created_at
     in `tickets`, and counted_at - created_at for the aggregation;
  c. producer: tickets/s of one producer process (the preload).
Writes bench/results/latest.{json,md,png}. Fails (exit 1) if any contender loses or
doubles a row; never fails on a slow figure.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.components import SPARK_JOBS
from core.scrape import scrape
from core.settings import LOCAL_DIR, REPO_ROOT, SettingError, at_least, load, setting
from scripts.bench.producer_speed import producer_command
from scripts.bench.profile import batch_phases, batch_times
from scripts.bench.report import write_report
from scripts.bench.stack import BenchStack
from scripts.embedded import process_group
from scripts.embedded.ports import free_port

PYTHON = sys.executable
# quix-streams runs in a virtualenv of its own (`make quix`): it pins an older Kafka client.
QUIX_PYTHON = LOCAL_DIR / "quix-venv" / "bin" / "python"
_T0 = time.monotonic()


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """Measure the pipeline and its baselines on this machine."""

    tickets: int = setting(
        "BENCH_TICKETS", "--tickets", 1_000_000, "Tickets preloaded for the drain", at_least(1000)
    )
    rates: str = setting(
        "BENCH_RATES", "--rates", "1000,10000", "Steady loads of the latency runs, tickets/s"
    )
    latency_seconds: float = setting(
        "BENCH_LATENCY_SECONDS", "--latency-seconds", 60.0, "Duration of each latency run", at_least(5)
    )
    warmup_seconds: float = setting(
        "BENCH_WARMUP_SECONDS",
        "--warmup-seconds",
        15.0,
        "Unmeasured load (at the first rate) after the jobs restart, before the latency runs",
        at_least(0),
    )
    partitions: int = setting(
        "BENCH_PARTITIONS", "--partitions", 4, "Partitions of the bench topic", at_least(1)
    )
    out_dir: str = setting(
        "BENCH_OUT_DIR", "--out-dir", str(REPO_ROOT / "bench" / "results"), "Where results go"
    )


class WrongResults(AssertionError):
    """A contender lost or doubled rows: the benchmark's figures would be meaningless."""


def progress(message: str) -> None:
    print(f"[bench +{time.monotonic() - _T0:7.1f}s] {message}", flush=True)


def scalar_row(stack: BenchStack, url: str, statement: str, params: tuple = ()) -> tuple:
    conn = stack.connect(url)
    with conn.cursor() as cur:
        cur.execute(statement, params)
        row = cur.fetchone()
    conn.close()
    return row


def scalar(stack: BenchStack, url: str, statement: str, params: tuple = ()):
    return scalar_row(stack, url, statement, params)[0]


def produce(stack: BenchStack, topic: str, count: int, rate: float, partitions: int) -> float:
    """Run one producer process; return its wall time in seconds."""
    started = time.monotonic()
    subprocess.run(
        producer_command(stack.broker.bootstrap_servers, topic, count, rate, partitions),
        env=stack.env,
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    output = log.open("w")
    return process_group.spawn(command, env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    process_group.stop(process, 60)


def wait_for_rows(
    stack: BenchStack, url: str, expected: int, label: str, processes, timeout: float = 1800
) -> None:
    """Poll until `tickets` and the aggregation both reach `expected`; a progress line every 5 s.

    Polls the table statistics every second and counts exactly only every 5 s or when
    the statistics say done: counting a million rows every second would take PostgreSQL
    CPU from the contender being measured.
    """
    # The rate counts from the rows already there (the latency phases start from the drain's).
    last_count, last = scalar(stack, url, "SELECT count(*) FROM tickets"), time.monotonic()
    deadline, last_time = last + timeout, last
    poll = (
        "SELECT coalesce((SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'tickets'), 0),"
        " (SELECT coalesce(sum(ticket_count), 0) FROM tickets_aggregation)"
    )
    while time.monotonic() < deadline:
        for p in processes:
            if p.poll() is not None:
                raise WrongResults(f"{label}: a process exited with {p.returncode} before the drain ended")
        count, counted = scalar_row(stack, url, poll)
        counted = counted if label.startswith("ours") else count
        now = time.monotonic()
        due = now - last >= 5
        if due or (count >= expected and counted >= expected):
            # The statistics lag behind an idle connection: the exact count decides.
            count = scalar(stack, url, "SELECT count(*) FROM tickets")
            counted = counted if label.startswith("ours") else count
            if count >= expected and counted >= expected:
                return
        if due:
            rate = (count - last_count) / max(now - last_time, 1e-9)
            progress(f"{label}: {count:,}/{expected:,} in tickets, {counted:,} counted, {rate:,.0f} rows/s")
            last, last_count, last_time = now, count, now
        time.sleep(1)
    raise WrongResults(f"{label}: only {count:,} of {expected:,} rows after {timeout:.0f}s")


def check_exact(stack: BenchStack, url: str, expected: int, label: str, with_aggregation: bool) -> None:
    """Fail loudly unless `tickets` holds `expected` distinct rows and the counts match them."""
    count = scalar(stack, url, "SELECT count(*) FROM tickets")
    if count != expected:
        raise WrongResults(f"{label}: {count:,} rows in tickets, {expected:,} expected (missing or doubled)")
    if with_aggregation:
        mismatch = scalar(
            stack,
            url,
            "SELECT count(*) FROM (SELECT type, count(*) AS n FROM tickets GROUP BY type) g"
            " FULL JOIN tickets_aggregation a USING (type) WHERE a.ticket_count IS DISTINCT FROM g.n",
        )
        if mismatch:
            raise WrongResults(f"{label}: tickets_aggregation differs from the GROUP BY over tickets")


def drain_rate(stack: BenchStack, url: str) -> dict:
    """Rows/s from the first micro-batch start (enriched_at) to the last insert (stored_at)."""
    seconds = scalar(stack, url, "SELECT extract(epoch FROM max(stored_at) - min(enriched_at)) FROM tickets")
    rows = scalar(stack, url, "SELECT count(*) FROM tickets")
    return {"rows": rows, "seconds": float(seconds), "rows_per_second": rows / float(seconds)}


JOBS = ("enrichment", "aggregation")


@dataclass
class OurJobs:
    """Both jobs of a bench run: their processes and their metrics endpoints, in JOBS order."""

    processes: list[subprocess.Popen]
    metrics_urls: dict[str, str]

    def batch_times(self, rows: int, timeout: float = 30) -> dict[str, dict]:
        """Each job's batch_times once its metrics count `rows` valid tickets: a job reports a
        batch just after its commit (jobs.batch_outcomes), so the last one may lag the table."""
        deadline = time.monotonic() + timeout
        while True:
            times = {job: batch_times(url) for job, url in self.metrics_urls.items()}
            if all(t["rows"] >= rows for t in times.values()) or time.monotonic() > deadline:
                return times
            time.sleep(0.2)

    def batch_phases(self, timeout: float = 30) -> dict[str, dict]:
        """Each job's batch_phases once every job has reported an addBatch: Spark posts a
        batch's progress on its listener bus after the batch ends, so it may lag the commit."""
        deadline = time.monotonic() + timeout
        while True:
            phases = {job: batch_phases(url) for job, url in self.metrics_urls.items()}
            if all(p.get("addBatch") for p in phases.values()) or time.monotonic() > deadline:
                return phases
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


def spark_env(stack: BenchStack, topic: str, **settings: str) -> dict[str, str]:
    """The environment of a Spark job on the bench's broker and topic: shipped settings, but
    for the given ones (NAME=value)."""
    return dict(
        stack.env, KAFKA_BOOTSTRAP_SERVERS=stack.broker.bootstrap_servers, TICKETS_TOPIC=topic, **settings
    )


def start_ours(stack: BenchStack, topic: str, writer_url: str, work: Path, run: str) -> OurJobs:
    """Both jobs as `make run` starts them (shipped settings), with no console sample;
    each logs to `<work>/<job>-<run>.log` and serves its metrics on a free port."""
    env = spark_env(stack, topic, DATABASE_URL=writer_url, CONSOLE_ROWS="0")
    processes, urls = [], {}
    for job, ui_port in zip(JOBS, (c.port for c in SPARK_JOBS), strict=True):
        # Metrics served as shipped, on free ports: a `make run` beside may hold the defaults.
        metrics_port = free_port()
        job_env = dict(
            env, CHECKPOINT_DIR=str(work / job), SPARK_UI_PORT=str(ui_port), METRICS_PORT=str(metrics_port)
        )
        processes.append(start([PYTHON, "-m", f"jobs.{job}"], job_env, work / f"{job}-{run}.log"))
        urls[job] = f"http://127.0.0.1:{metrics_port}/metrics"
    return OurJobs(processes, urls)


def wait_until_up(jobs: OurJobs, timeout: float = 180) -> None:
    """Until both jobs serve their metrics, which they do once their query runs (start-up
    done), polled every 0.2 s."""
    deadline = time.monotonic() + timeout
    waiting = dict(jobs.metrics_urls)
    while waiting and time.monotonic() < deadline:
        for job, url in list(waiting.items()):
            try:
                scrape(url)
                del waiting[job]
            except OSError:
                pass
        time.sleep(0.2)
    if waiting:
        raise WrongResults(f"{sorted(waiting)} did not start within {timeout:.0f} s")


def jobs_meter(stack: BenchStack, processes: list[subprocess.Popen]):
    """A started CPU meter of the broker, PostgreSQL and both jobs (in JOBS order)."""
    meter = stack.cpu_meter(**dict(zip(JOBS, (p.pid for p in processes), strict=True)))
    meter.start()
    return meter


def run_ours_drain(stack: BenchStack, topic: str, n: int, work: Path) -> tuple[dict, OurJobs]:
    """Drain with both jobs. CPU is metered twice: from the processes' start (start-up
    included) and from the moment both queries run (the drain's own cost per ticket)."""
    owner, writer = stack.database("ours")
    jobs = start_ours(stack, topic, writer, work, "drain")
    meter = jobs_meter(stack, jobs.processes)
    wait_until_up(jobs)
    drain_meter = jobs_meter(stack, jobs.processes)
    wait_for_rows(stack, owner, n, "ours", jobs.processes)
    cpu, drain_cpu = meter.stop(), drain_meter.stop()
    check_exact(stack, owner, n, "ours", with_aggregation=True)
    result = drain_rate(stack, owner)
    result["cpu_seconds"] = cpu
    result["drain_cpu_seconds"] = drain_cpu
    result["cpu_microseconds_per_ticket"] = {job: round(drain_cpu[job] / n * 1e6, 1) for job in JOBS}
    result["batches"] = jobs.batch_times(n)
    result["phases_ms"] = jobs.batch_phases()
    result["top_statements"] = stack.top_statements("ours")
    result["aggregation_exact_seconds"] = float(
        scalar(
            stack,
            owner,
            "SELECT extract(epoch FROM (SELECT max(counted_at) FROM tickets_aggregation_seen)"
            " - (SELECT min(enriched_at) FROM tickets))",
        )
    )
    return result, jobs


def consumer_command(
    python: str, module: str, stack: BenchStack, topic: str, url: str, *extra: str
) -> list[str]:
    """A Python consumer contender of scripts/bench reading `topic` into the database `url`."""
    return [
        python, "-m", f"scripts.bench.{module}",
        "--bootstrap-servers", stack.broker.bootstrap_servers,
        "--topic", topic,
        "--database-url", url,
        *extra,
    ]  # fmt: skip


def run_plain_consumer(stack: BenchStack, topic: str, n: int, work: Path) -> dict:
    owner, _writer = stack.database("plain")
    process = start(
        consumer_command(PYTHON, "plain_consumer", stack, topic, owner, "--expected", str(n)),
        stack.env,
        work / "plain.log",
    )
    meter = stack.cpu_meter(consumer=process.pid)
    meter.start()
    try:
        wait_for_rows(stack, owner, n, "plain Python consumer", [])
        cpu = meter.stop()
        process.wait(120)
    finally:
        stop(process)
    check_exact(stack, owner, n, "plain Python consumer", with_aggregation=True)
    return {**drain_rate(stack, owner), "cpu_seconds": cpu, "top_statements": stack.top_statements("plain")}


def run_naive_spark(stack: BenchStack, topic: str, n: int, work: Path) -> dict:
    owner, _writer = stack.database("naive")
    jdbc = f"jdbc:postgresql://127.0.0.1:{stack.postgres.port}/naive"
    # The naive approach as a team would run it: Spark's JVM defaults (C2 JIT included).
    env = dict(stack.env, PGPASSWORD=stack.postgres.password, SPARK_JAVA_OPTIONS="")
    process = start(
        [
            PYTHON,
            "-m",
            "scripts.bench.naive_spark",
            "--bootstrap-servers",
            stack.broker.bootstrap_servers,
            "--topic",
            topic,
            "--jdbc-url",
            jdbc,
            "--user",
            stack.postgres.name,
            "--checkpoint-dir",
            str(work / "naive"),
        ],
        env,
        work / "naive.log",
    )
    meter = stack.cpu_meter(spark=process.pid)
    meter.start()
    try:
        wait_for_rows(stack, owner, n, "naive Spark JDBC", [process])
        cpu = meter.stop()
    finally:
        stop(process)
    check_exact(stack, owner, n, "naive Spark JDBC", with_aggregation=False)
    return {**drain_rate(stack, owner), "cpu_seconds": cpu}


SPARK_FLOOR = "the Spark floor"
QUIX = "quix-streams"


def read_progress(path: Path) -> list[dict]:
    """The micro-batches of a progress file of scripts.bench.spark_floor (whole lines only)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return [json.loads(line) for line in lines if line.endswith("\n")]


def progress_drain(batches: list[dict]) -> dict:
    """Rows/s of a query from its progress: the first batch with input rows starts
    (`timestamp`, its trigger's start), the last ends (`timestamp` + `batchDuration`)."""
    busy = [b for b in batches if b["numInputRows"]]
    if not busy:
        raise WrongResults(f"{SPARK_FLOOR}: no micro-batch read any row")
    starts = [datetime.fromisoformat(b["timestamp"]).timestamp() for b in busy]
    first = min(starts)
    last = max(start + b["batchDuration"] / 1000 for start, b in zip(starts, busy, strict=True))
    rows = sum(b["numInputRows"] for b in busy)
    return {
        "rows": rows,
        "seconds": last - first,
        "rows_per_second": rows / (last - first),
        "batches": len(busy),
    }


def wait_for_input_rows(
    path: Path, expected: int, process: subprocess.Popen, timeout: float = 1800
) -> list[dict]:
    """Poll the Spark floor's progress file every second until its batches hold `expected`
    input rows; a progress line every 5 s. More rows, or the process exiting first, fail."""
    started = last = time.monotonic()
    rows = last_rows = 0
    while time.monotonic() < started + timeout:
        batches = read_progress(path)
        rows = sum(b["numInputRows"] for b in batches)
        if rows > expected:
            raise WrongResults(f"{SPARK_FLOOR}: {rows:,} input rows, {expected:,} expected (doubled)")
        if rows == expected:
            return batches
        if process.poll() is not None:
            raise WrongResults(
                f"{SPARK_FLOOR}: exited with {process.returncode} after {rows:,} of {expected:,} input rows"
            )
        now = time.monotonic()
        if now - last >= 5:
            rate = (rows - last_rows) / (now - last)
            progress(f"{SPARK_FLOOR}: {rows:,}/{expected:,} input rows (noop sink), {rate:,.0f} rows/s")
            last, last_rows = now, rows
        time.sleep(1)
    raise WrongResults(f"{SPARK_FLOOR}: only {rows:,} of {expected:,} input rows after {timeout:.0f}s")


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until `path` exists (the Spark floor's query has started), polled every 0.2 s."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise WrongResults(f"{SPARK_FLOOR}: its query did not start (exit code {process.poll()})")
        time.sleep(0.2)


def run_spark_floor(stack: BenchStack, topic: str, n: int, work: Path) -> dict:
    """The enrichment job's Kafka read and validation into Spark's noop sink, with the jobs'
    shipped settings: measured from its query's progress, which must count exactly n input
    rows. CPU is metered from the process's start and from its query's start, like ours."""
    progress_file = work / "floor-progress.jsonl"
    process = start(
        [
            PYTHON,
            "-m",
            "scripts.bench.spark_floor",
            "--progress-file",
            str(progress_file),
            "--ui-port",
            str(free_port()),
        ],
        spark_env(stack, topic),
        work / "floor.log",
    )
    meter = stack.cpu_meter(spark=process.pid)
    meter.start()
    try:
        wait_for_file(progress_file, process)
        drain_meter = stack.cpu_meter(spark=process.pid)
        drain_meter.start()
        wait_for_input_rows(progress_file, n, process)
        cpu, drain_cpu = meter.stop(), drain_meter.stop()
    finally:
        stop(process)
    # Read again once stopped: a batch after the n-th row would have doubled some.
    result = progress_drain(read_progress(progress_file))
    if result["rows"] != n:
        raise WrongResults(f"{SPARK_FLOOR}: {result['rows']:,} input rows, {n:,} expected")
    result["cpu_seconds"] = cpu
    result["drain_cpu_seconds"] = drain_cpu
    result["cpu_microseconds_per_ticket"] = round(drain_cpu["spark"] / n * 1e6, 1)
    return result


def run_quix_consumer(stack: BenchStack, topic: str, n: int, work: Path) -> dict:
    """quix-streams with its PostgreSQLSink into `tickets`; it counts no tickets per type."""
    owner, _writer = stack.database("quix")
    if not QUIX_PYTHON.exists():
        raise WrongResults(f"{QUIX}: {QUIX_PYTHON} is missing: `make quix` creates it (`make bench` does)")
    process = start(
        consumer_command(str(QUIX_PYTHON), "quix_consumer", stack, topic, owner), stack.env, work / "quix.log"
    )
    meter = stack.cpu_meter(consumer=process.pid)
    meter.start()
    try:
        wait_for_rows(stack, owner, n, QUIX, [process])
        cpu = meter.stop()
    finally:
        stop(process)
    check_exact(stack, owner, n, QUIX, with_aggregation=False)
    return {**drain_rate(stack, owner), "cpu_seconds": cpu, "top_statements": stack.top_statements("quix")}


def run_raw_copy(stack: BenchStack, source_url: str, n: int, work: Path) -> dict:
    """The sink's physical limit: COPY the same rows into an identical, empty table."""
    target, _ = stack.database("rawcopy")
    dump = work / "tickets.csv"
    conn = stack.connect(source_url)
    with conn.cursor() as cur, dump.open("w") as f:
        cur.copy_expert("COPY tickets TO STDOUT WITH (FORMAT csv)", f)
    conn.close()
    conn = stack.connect(target)
    started = time.monotonic()
    with conn.cursor() as cur, dump.open() as f:
        cur.copy_expert("COPY tickets FROM STDIN WITH (FORMAT csv)", f)
    conn.commit()
    seconds = time.monotonic() - started
    conn.close()
    check_exact(stack, target, n, "raw COPY", with_aggregation=False)
    return {"rows": n, "seconds": seconds, "rows_per_second": n / seconds}


def percentiles(stack: BenchStack, url: str, expression: str, since: datetime, table_join: str = "") -> dict:
    statement = (
        "SELECT count(*),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY v), percentile_cont(0.95) WITHIN GROUP (ORDER BY v),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY v), max(v)"
        f" FROM (SELECT extract(epoch FROM {expression}) AS v FROM tickets t {table_join}"
        " WHERE t.created_at >= %s) s"
    )
    conn = stack.connect(url)
    with conn.cursor() as cur:
        cur.execute(statement, (since,))
        count, p50, p95, p99, worst = cur.fetchone()
    conn.close()
    values = {"p50": p50, "p95": p95, "p99": p99, "max": worst}
    return {"tickets": count, **{k: None if v is None else float(v) for k, v in values.items()}}


def run_latency(
    stack: BenchStack, topic: str, url: str, rate: int, seconds: float, expected: int, processes
) -> dict:
    since = datetime.now(UTC)
    count = int(rate * seconds)
    progress(f"latency: producing {count:,} tickets at {rate:,}/s")
    meter = jobs_meter(stack, processes)
    wall = produce(stack, topic, count, rate, 1)
    wait_for_rows(stack, url, expected + count, f"ours at {rate:,}/s", processes)
    cpu = meter.stop()
    check_exact(stack, url, expected + count, f"ours at {rate:,}/s", with_aggregation=True)
    # A growing backlog shows as latency rising to the end of the run: its last 10 s.
    last = since + timedelta(seconds=max(seconds - 10, 0))
    counted = "JOIN tickets_aggregation_seen a USING (ticket_id)"
    return {
        "rate": rate,
        "achieved_rate": count / wall,
        # Warm jobs under steady load (the producer's own CPU is not in any of these).
        "cpu_seconds": cpu,
        "cpu_microseconds_per_ticket": {job: round(cpu[job] / count * 1e6, 1) for job in JOBS},
        "tickets": percentiles(stack, url, "t.stored_at - t.created_at", since),
        "aggregation": percentiles(stack, url, "a.counted_at - t.created_at", since, counted),
        "last_10s": {
            "tickets": percentiles(stack, url, "t.stored_at - t.created_at", last),
            "aggregation": percentiles(stack, url, "a.counted_at - t.created_at", last, counted),
        },
    }


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load(BenchSettings, argv, prog="make bench ARGS=")
    except SettingError as e:
        print(e, file=sys.stderr)
        return 2
    rates = [int(r) for r in settings.rates.split(",") if r.strip()]
    n = settings.tickets
    # SIGTERM unwinds like Ctrl-C, so the jobs, broker and PostgreSQL are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack = BenchStack()
    work = Path(tempfile.mkdtemp(prefix="ticket-pipeline-bench-work-"))
    results: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {_memory_gib():.0f} GiB, {platform.platform()}",
        "settings": asdict(settings),
    }
    jobs: OurJobs | None = None
    try:
        progress("starting the bench's broker and PostgreSQL")
        stack.start()
        topic = "bench_tickets"
        progress(f"producer: preloading {n:,} tickets with one process at full speed")
        wall = produce(stack, topic, n, 0, settings.partitions)
        results["producer"] = {"rows": n, "seconds": wall, "rows_per_second": n / wall}
        progress(f"producer: {n / wall:,.0f} tickets/s")

        progress("ours: starting both Spark jobs on the preloaded topic")
        results["ours"], jobs = run_ours_drain(stack, topic, n, work)
        progress(f"ours: {results['ours']['rows_per_second']:,.0f} tickets/s")
        jobs.stop()
        results["raw_copy"] = run_raw_copy(stack, stack.postgres.url_for("ours"), n, work)
        progress(f"raw COPY: {results['raw_copy']['rows_per_second']:,.0f} rows/s")
        progress("plain Python consumer: draining the same preloaded tickets")
        results["plain_consumer"] = run_plain_consumer(stack, topic, n, work)
        progress(f"plain Python consumer: {results['plain_consumer']['rows_per_second']:,.0f} tickets/s")
        progress("naive Spark JDBC append: draining the same preloaded tickets")
        results["naive_spark"] = run_naive_spark(stack, topic, n, work)
        progress(f"naive Spark JDBC: {results['naive_spark']['rows_per_second']:,.0f} tickets/s")
        progress(f"{SPARK_FLOOR}: our Kafka read and validation into the noop sink, on the same tickets")
        results["spark_floor"] = run_spark_floor(stack, topic, n, work)
        progress(f"{SPARK_FLOOR}: {results['spark_floor']['rows_per_second']:,.0f} tickets/s")
        progress(f"{QUIX}: draining the same preloaded tickets with its PostgreSQLSink")
        results["quix"] = run_quix_consumer(stack, topic, n, work)
        progress(f"{QUIX}: {results['quix']['rows_per_second']:,.0f} tickets/s")

        progress("latency: restarting both jobs from their checkpoints (caught up)")
        jobs = start_ours(
            stack, topic, stack.postgres.url_for("ours", user=stack.postgres.writer), work, "latency"
        )
        wait_until_up(jobs)
        results["latency"] = []
        expected = n
        if settings.warmup_seconds and rates:
            warmup = int(rates[0] * settings.warmup_seconds)
            progress(f"latency: warming the restarted jobs up with {warmup:,} tickets (not measured)")
            produce(stack, topic, warmup, rates[0], 1)
            wait_for_rows(
                stack, stack.postgres.url_for("ours"), expected + warmup, "ours warm-up", jobs.processes
            )
            expected += warmup
        for rate in rates:
            results["latency"].append(
                run_latency(
                    stack,
                    topic,
                    stack.postgres.url_for("ours"),
                    rate,
                    settings.latency_seconds,
                    expected,
                    jobs.processes,
                )
            )
            expected += int(rate * settings.latency_seconds)
        if results["latency"]:
            results["latency_phases_ms"] = jobs.batch_phases()
    except WrongResults as e:
        progress(f"WRONG RESULTS: {e}")
        return 1
    finally:
        if jobs is not None:
            jobs.stop()
        stack.close()
    paths = write_report(results, Path(settings.out_dir))
    progress("results: " + ", ".join(str(p) for p in paths))
    print(json.dumps({k: results[k] for k in ("producer", "ours", "raw_copy")}, indent=2))
    return 0


def _memory_gib() -> float:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) / 1024 / 1024


if __name__ == "__main__":
    sys.exit(main())
