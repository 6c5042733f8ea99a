"""What the fault tests share: the pipeline's processes, their faults, and the end-state check.

The producer and both Spark jobs run as real subprocesses, each in its own session
(process group): `python -m jobs.enrichment` starts a JVM child through spark-submit,
so a crash is simulated with SIGKILL to the whole group, as the kernel's OOM killer or
a node loss would. A `Pipeline` restarts a job that exits on its own after a short
delay, like `make run`'s supervisor or the Spark operator would, and counts it.

The end state is checked against the producer's ledger (every acknowledged ticket_id):
`tickets` must hold exactly the ledger's ids, and the aggregation must equal the
GROUP BY over `tickets`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from confluent_kafka import Consumer, TopicPartition

from core.settings import REPO_ROOT
from tests.conftest import free_port

__all__ = [
    "EndState",
    "Pipeline",
    "Process",
    "Progress",
    "assert_exact",
    "end_state",
    "job_command",
    "log",
    "producer_command",
    "query",
    "read_ledger",
    "report",
    "topic_ticket_ids",
    "wait_until_drained",
]

PYTHON = sys.executable
JOBS = ("enrichment", "aggregation")
# A job restarted by the supervisor waits this long first (make run waits 5 s).
RESTART_DELAY_SECONDS = 2.0
_T0 = time.monotonic()
_BATCH_LINE = re.compile(rb"^batch (\d+):")
# The first batch line of a restarted job tells whether it replayed rows already stored.
_ENRICHMENT_BATCH = re.compile(r"^batch \d+: (\d+) valid \((\d+) new")
_AGGREGATION_BATCH = re.compile(r"^batch \d+: (\d+) valid tickets, (.*)$")


def log(message: str) -> None:
    """A progress line on stdout (visible with `pytest -s`)."""
    print(f"[faults +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Process:
    """A command run in its own process group, its output in one log file per start."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    ui_port: int | None = None
    _terminating: bool = field(default=False, repr=False)
    _scan: tuple[int, bytes, int] = field(default=(0, b"", 0), repr=False)  # offset, rest, count
    _log_file: object = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self._terminating = False
        self._scan = (0, b"", 0)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited(self) -> int | None:
        """The exit code if the process has ended (and was not reaped by us yet)."""
        if self.process is None:
            return None
        return self.process.poll()

    def kill(self) -> None:
        """SIGKILL the whole process group (the Python driver and its JVM), as a crash would."""
        if self.process is None:
            return
        self._killpg(signal.SIGKILL)
        self.process.wait()
        self._wait_group_gone()
        self._closed()

    def terminate(self, timeout_seconds: float = 60) -> int | None:
        """SIGTERM the leader only (it stops its JVM itself); SIGKILL the group after the timeout.

        Returns the leader's exit code (None if it had to be killed).
        """
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            # One SIGTERM only: a second one could land after the interpreter has put the
            # default handlers back while exiting, and turn a clean exit 0 into -15.
            self.send_sigterm()
            try:
                code = self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout_seconds:g}s after SIGTERM: killing it")
                code = None
        # Whatever is left of the group (a JVM that outlived its driver) goes too.
        self._killpg(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait()
        self._closed()
        return code

    def send_sigterm(self) -> None:
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self._terminating = True
            self.process.send_signal(signal.SIGTERM)

    def reap(self) -> int:
        """Record the exit of a process that ended on its own and clean its group."""
        code = self.process.wait()
        self._killpg(signal.SIGKILL)
        self._closed()
        return code

    def batches_logged(self) -> int:
        """Micro-batches this start has printed (`batch N: ...` lines), read incrementally."""
        offset, rest, count = self._scan
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        if chunk:
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()  # an unfinished line, completed by the next read
            count += sum(1 for line in lines if _BATCH_LINE.match(line))
            self._scan = (offset + len(chunk), rest, count)
        return count

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _killpg(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _wait_group_gone(self, timeout_seconds: float = 10) -> None:
        """Wait until no process of the group is left (the JVM releases its ports)."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)

    def _closed(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            self.exit_codes.append(self.process.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def base_env(password: str, work_dir: Path) -> dict[str, str]:
    """The subprocesses' environment: the database password, unbuffered output, private temp dirs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("KAFKA_", "DATABASE_", "PRODUCER_", "CHECKPOINT_", "SPARK_", "TRIGGER_", "METRICS_")
        )
    }
    spark_local = work_dir / "spark-local"
    spark_local.mkdir(parents=True, exist_ok=True)
    env.update(
        PGPASSWORD=password,
        PYTHONUNBUFFERED="1",
        TZ="UTC",
        # No metrics endpoints: a job restarted by the supervisor loop must not wait for
        # its predecessor's port (tests/jobs/test_metrics.py covers the metrics).
        METRICS_PORT="-1",
        # Spark's scratch space (shuffle, block manager) inside the test's folder, so
        # the dirs a SIGKILLed JVM leaves behind are removed with it.
        SPARK_LOCAL_DIRS=str(spark_local),
    )
    return env


def job_command(
    job: str,
    *,
    bootstrap: str,
    topic: str,
    database_url: str,
    checkpoint_dir: Path,
    max_offsets_per_trigger: int = 500,
    trigger_interval_seconds: float = 0.5,
    database_retry_seconds: float = 120,
) -> list[str]:
    command = [
        PYTHON,
        "-m",
        f"jobs.{job}",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--database-url",
        database_url,
        "--checkpoint-dir",
        str(checkpoint_dir),
        "--trigger-interval-seconds",
        f"{trigger_interval_seconds:g}",
        "--max-offsets-per-trigger",
        str(max_offsets_per_trigger),
        "--database-retry-seconds",
        f"{database_retry_seconds:g}",
        "--driver-memory",
        "512m",
        "--progress-interval-seconds",
        "10",
    ]
    if job == "enrichment":
        command += ["--console-rows", "0"]
    return command


def producer_command(
    *, bootstrap: str, topic: str, ledger: Path, rate: float = 300, seed: int = 1, count: int = 0
) -> list[str]:
    return [
        PYTHON,
        "-m",
        "producer",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--rate",
        f"{rate:g}",
        "--count",
        str(count),
        "--seed",
        str(seed),
        "--ledger-file",
        str(ledger),
        "--progress-interval-seconds",
        "10",
    ]


class Pipeline:
    """The producer and both jobs; restarts a job that exits on its own (counted)."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        database_url: str,
        password: str,
        work_dir: Path,
        rate: float = 300,
        seed: int = 1,
        max_offsets_per_trigger: int = 500,
        database_retry_seconds: float = 120,
    ) -> None:
        self.database_url = database_url
        self.password = password
        self.work_dir = work_dir
        self.ledger = work_dir / "ledger.txt"
        env = base_env(password, work_dir)
        logs = work_dir / "logs"
        self.jobs: dict[str, Process] = {}
        for job in JOBS:
            command = job_command(
                job,
                bootstrap=bootstrap,
                topic=topic,
                database_url=database_url,
                checkpoint_dir=work_dir / "checkpoints" / job,
                max_offsets_per_trigger=max_offsets_per_trigger,
                database_retry_seconds=database_retry_seconds,
            )
            # A UI port of its own (restarts keep it), not the 4040/4041 a `make run` may hold.
            ui_port = free_port()
            command += ["--ui-port", str(ui_port)]
            self.jobs[job] = Process(job, command, env, logs, ui_port=ui_port)
        self.producer = Process(
            "producer",
            producer_command(bootstrap=bootstrap, topic=topic, ledger=self.ledger, rate=rate, seed=seed),
            env,
            logs,
        )
        self.kills: list[tuple[float, str, int]] = []  # (time, job, batches seen by that start)
        self.restarts: Counter[str] = Counter()  # supervised restarts after an exit of its own
        self.unexpected_exits: list[tuple[str, int, str]] = []  # (job, code, log tail)
        self._restart_at: dict[str, float] = {}
        self.progress = Progress(self)

    # -- lifecycle

    def start_jobs(self) -> None:
        for job in self.jobs.values():
            self._start_job(job)

    def wait_until_jobs_up(self, timeout_seconds: float = 180) -> None:
        """Wait until both drivers have a SparkContext (their UI port answers)."""
        deadline = time.monotonic() + timeout_seconds
        waiting = set(self.jobs)
        while waiting:
            for name in sorted(waiting):
                try:
                    socket.create_connection(("127.0.0.1", self.jobs[name].ui_port), timeout=0.5).close()
                    waiting.discard(name)
                    log(f"{name} is up (Spark UI on port {self.jobs[name].ui_port})")
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{sorted(waiting)} not up after {timeout_seconds:g}s:\n{self.tails()}")
            if waiting:
                self.sleep(0.5)

    def start_producer(self) -> None:
        self.producer.start()
        log(f"producer started (pid {self.producer.process.pid})")

    def stop_producer(self, timeout_seconds: float = 60) -> int | None:
        code = self.producer.terminate(timeout_seconds)
        log(f"producer stopped with exit code {code}")
        return code

    def stop_jobs(self, timeout_seconds: float = 60) -> dict[str, int | None]:
        codes = {}
        for job in self.jobs.values():
            job.send_sigterm()
        for name, job in self.jobs.items():
            codes[name] = job.terminate(timeout_seconds)
        log(f"jobs stopped: {codes}")
        return codes

    def close(self) -> None:
        """Kill whatever still runs (a finally block calls this, even after a failure)."""
        for process in (self.producer, *self.jobs.values()):
            if process.process is not None and process.process.returncode is None:
                process.kill()

    # -- faults

    def kill_job(self, name: str, *, restart: bool = True, note: str = "") -> None:
        job = self.jobs[name]
        batches = job.batches_logged()
        job.kill()
        self.kills.append((time.monotonic(), name, batches))
        log(
            f"KILL -9 #{len(self.kills)}: {name} (pid group {job.process.pid},"
            f" {batches} batches since its start){note}"
        )
        if restart:
            self._start_job(job)

    # -- supervision

    def supervise(self) -> None:
        """Restart a job that exited on its own, after RESTART_DELAY_SECONDS."""
        now = time.monotonic()
        for name, job in self.jobs.items():
            if name in self._restart_at:
                if now >= self._restart_at[name]:
                    del self._restart_at[name]
                    self.restarts[name] += 1
                    log(f"supervisor: restarting {name} (restart {self.restarts[name]})")
                    self._start_job(job)
                continue
            if job.process is None or job.process.returncode is not None:
                continue
            code = job.exited()
            if code is not None:
                tail = job.tail(1500)
                job.reap()
                self.unexpected_exits.append((name, code, tail))
                last = " | ".join(line for line in tail.splitlines()[-3:] if line.strip())
                log(f"supervisor: {name} exited on its own with code {code}: {last[-300:]}")
                self._restart_at[name] = now + RESTART_DELAY_SECONDS
        if self.producer.process is not None and self.producer.process.returncode is None:
            code = self.producer.exited()
            if code is not None:
                self.producer.reap()
                raise AssertionError(
                    f"the producer exited on its own with code {code}:\n{self.producer.tail()}"
                )

    def sleep(self, seconds: float) -> None:
        """Wait while supervising the jobs."""
        deadline = time.monotonic() + seconds
        while True:
            self.supervise()
            self.progress.log_if_due()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.25, left))

    def wait_for_new_batches(
        self, name: str, batches: int, timeout_seconds: float, poll_seconds: float = 0.1
    ) -> None:
        """Wait until the job has logged `batches` more micro-batches (counted anew after a restart).

        A small `poll_seconds` returns within milliseconds of the line: a batch line is
        printed right after the batch's database commit, before Spark's checkpoint commit.
        """
        job = self.jobs[name]
        start, target = job.starts, job.batches_logged() + batches
        deadline = time.monotonic() + timeout_seconds
        next_supervise = 0.0
        while True:
            if job.starts != start:
                start, target = job.starts, batches
            if job.batches_logged() >= target:
                return
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(
                    f"{name} logged fewer than {batches} new batches in {timeout_seconds:g}s:\n{job.tail()}"
                )
            if now >= next_supervise:
                self.supervise()
                self.progress.log_if_due()
                next_supervise = now + 0.25
            time.sleep(poll_seconds)

    def replayed_batches(self) -> list[str]:
        """First batch lines of restarted jobs that found their rows already written.

        That is the proof that a kill landed between a batch's database commit and
        Spark's checkpoint commit, and that the replay added nothing.
        """
        replays = []
        for path in sorted((self.work_dir / "logs").glob("*.log")):
            job, start = path.name.split(".")[:2]
            if job not in self.jobs or start == "1":
                continue
            for line in path.read_text(errors="replace").splitlines():
                if job == "enrichment" and (m := _ENRICHMENT_BATCH.match(line)):
                    if int(m.group(2)) < int(m.group(1)):
                        replays.append(f"{job}.{start}: {line}")
                    break
                if job == "aggregation" and (m := _AGGREGATION_BATCH.match(line)):
                    added = sum(int(n) for n in re.findall(r"\+(\d+)", m.group(2)))
                    if added < int(m.group(1)):
                        replays.append(f"{job}.{start}: {line}")
                    break
        return replays

    def wait_for_rows(self, tickets: int, counted: int, timeout_seconds: float) -> None:
        """Wait until `tickets` and the aggregation hold at least so many rows/counts."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            stored, total = self.progress.maybe_log()
            if stored >= tickets and total >= counted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout_seconds:g}s only {stored} tickets and {total} counted"
                    f" (wanted {tickets}/{counted}):\n{self.tails()}"
                )
            self.sleep(1)

    def count_in_job_logs(self, text: str) -> int:
        """Lines holding `text` in every log of both jobs, all starts included."""
        total = 0
        for path in sorted((self.work_dir / "logs").glob("*.log")):
            if path.name.startswith(tuple(self.jobs)):
                total += sum(1 for line in path.read_bytes().splitlines() if text.encode() in line)
        return total

    def tails(self) -> str:
        return "\n".join(
            f"--- {p.name} ({p.log_path.name}) ---\n{p.tail()}" for p in (self.producer, *self.jobs.values())
        )

    def _start_job(self, job: Process) -> None:
        job.start()
        log(f"{job.name} started (start {job.starts}, pid {job.process.pid})")


# --------------------------------------------------------------------------- database


OUTAGE_SECONDS = 20


def outage_pipeline(
    *, bootstrap: str, topic: str, database_url: str, password: str, work_dir: Path, rng
) -> Pipeline:
    """A pipeline for an outage test, its jobs up and tickets flowing when it returns.

    Bigger batches than the kill test's: an outage test needs no many-batch window,
    and the backlog of the outage drains faster. Production starts once the drivers
    are up, so that the backlog stays small; the outage then comes 0 to 2 s after the
    first rows, at a random point of a batch.
    """
    pipeline = Pipeline(
        bootstrap=bootstrap,
        topic=topic,
        database_url=database_url,
        password=password,
        work_dir=work_dir,
        rate=300,
        seed=rng.randrange(1 << 30),
        max_offsets_per_trigger=2000,
    )
    try:
        pipeline.start_jobs()
        pipeline.wait_until_jobs_up()
        pipeline.start_producer()
        pipeline.wait_for_rows(tickets=1, counted=1, timeout_seconds=180)
        pipeline.sleep(rng.uniform(0, 2))
    except BaseException:
        pipeline.close()
        raise
    return pipeline


def stop_for_a_while(pipeline: Pipeline, service: str, stop, start) -> float:
    """Stop a service for ~OUTAGE_SECONDS while the pipeline runs; return the outage in seconds."""
    log(f"STOPPING {service} for ~{OUTAGE_SECONDS}s")
    down = time.monotonic()
    stop()
    stopped = time.monotonic() - down
    pipeline.sleep(max(0.0, OUTAGE_SECONDS - stopped))
    start()
    outage = time.monotonic() - down
    log(f"{service} stopped in {stopped:.1f}s, back after {outage:.1f}s in all")
    return outage


def query(database_url: str, password: str, statement: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(database_url, password=password, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def counts(database_url: str, password: str) -> tuple[int, int]:
    """(rows in tickets, sum of tickets_aggregation); (-1, -1) while PostgreSQL is down."""
    try:
        rows = query(
            database_url,
            password,
            "SELECT (SELECT count(*) FROM tickets),"
            " (SELECT coalesce(sum(ticket_count), 0) FROM tickets_aggregation)",
        )
    except psycopg2.OperationalError:
        return -1, -1
    return int(rows[0][0]), int(rows[0][1])


class Progress:
    """Logs the rows so far every few seconds."""

    def __init__(self, pipeline: Pipeline, every_seconds: float = 5) -> None:
        self._pipeline = pipeline
        self._every = every_seconds
        self._next = 0.0

    def maybe_log(self, force: bool = False) -> tuple[int, int]:
        """Query the counts; log them if a line is due."""
        stored, counted = counts(self._pipeline.database_url, self._pipeline.password)
        if force or time.monotonic() >= self._next:
            self._log(stored, counted)
        return stored, counted

    def log_if_due(self) -> None:
        """Log the counts if a line is due (querying only then)."""
        if time.monotonic() >= self._next:
            self._log(*counts(self._pipeline.database_url, self._pipeline.password))

    def _log(self, stored: int, counted: int) -> None:
        self._next = time.monotonic() + self._every
        ledger = _count_lines(self._pipeline.ledger)
        shown = ("down", "down") if stored < 0 else (stored, counted)
        log(
            f"rows so far: ledger {ledger}, tickets {shown[0]}, aggregation {shown[1]},"
            f" kills {len(self._pipeline.kills)}, restarts {sum(self._pipeline.restarts.values())}"
        )


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def read_ledger(path: Path) -> list[str]:
    """Every acknowledged ticket_id, in acknowledgement order (read after the producer exited)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- end state


@dataclass
class EndState:
    produced: int  # ledger lines: tickets the producer had acknowledged
    ledger_distinct: int
    stored: int  # rows in tickets
    stored_distinct: int
    missing: list[str]  # in the ledger, not in tickets
    extra: list[str]  # in tickets, not in the ledger
    aggregation: dict[str, int]
    group_by: dict[str, int]
    seen: int  # rows in tickets_aggregation_seen

    @property
    def duplicates(self) -> int:
        """Ids present more than once: in the ledger, in tickets, or counted more than once."""
        counted_twice = max(0, sum(self.aggregation.values()) - self.stored)
        return (self.produced - self.ledger_distinct) + (self.stored - self.stored_distinct) + counted_twice

    @property
    def drained(self) -> bool:
        return (
            self.stored == self.produced
            and not self.missing
            and not self.extra
            and self.aggregation == self.group_by
        )


def end_state(database_url: str, password: str, ledger: list[str]) -> EndState:
    ids = query(database_url, password, "SELECT ticket_id::text FROM tickets")
    stored = [row[0] for row in ids]
    stored_set, ledger_set = set(stored), set(ledger)
    aggregation = dict(
        query(
            database_url,
            password,
            "SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0",
        )
    )
    group_by = dict(query(database_url, password, "SELECT type, count(*) FROM tickets GROUP BY type"))
    seen = query(database_url, password, "SELECT count(*) FROM tickets_aggregation_seen")[0][0]
    return EndState(
        produced=len(ledger),
        ledger_distinct=len(ledger_set),
        stored=len(stored),
        stored_distinct=len(stored_set),
        missing=sorted(ledger_set - stored_set),
        extra=sorted(stored_set - ledger_set),
        aggregation={k: int(v) for k, v in aggregation.items()},
        group_by={k: int(v) for k, v in group_by.items()},
        seen=int(seen),
    )


def wait_until_drained(pipeline: Pipeline, ledger: list[str], timeout_seconds: float = 150) -> EndState:
    """Supervise the jobs until tickets == ledger and aggregation == GROUP BY, or the timeout."""
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    while True:
        stored, counted = pipeline.progress.maybe_log()
        if stored == len(ledger) and counted == len(ledger):
            state = end_state(pipeline.database_url, pipeline.password, ledger)
            if state.drained:
                log(f"drained in {time.monotonic() - started:.1f}s: {stored} tickets, {counted} counted")
                return state
        if time.monotonic() > deadline:
            log(f"NOT drained after {timeout_seconds:g}s")
            return end_state(pipeline.database_url, pipeline.password, ledger)
        pipeline.sleep(1)


def assert_exact(state: EndState, pipeline: Pipeline | None = None) -> None:
    """tickets == ledger (none missing, none extra, none twice); aggregation == GROUP BY."""
    context = f"\n{pipeline.tails()}" if pipeline is not None and not state.drained else ""
    assert state.produced > 0, "the producer acknowledged no ticket"
    assert state.ledger_distinct == state.produced, "the ledger holds an acknowledged ticket_id twice"
    assert not state.missing, f"{len(state.missing)} tickets missing, e.g. {state.missing[:5]}{context}"
    assert not state.extra, f"{len(state.extra)} tickets not in the ledger, e.g. {state.extra[:5]}{context}"
    assert state.stored == state.stored_distinct == state.produced
    assert state.aggregation == state.group_by, (
        f"aggregation {state.aggregation} != GROUP BY {state.group_by}{context}"
    )
    assert state.seen == state.stored, f"{state.seen} ids counted, {state.stored} tickets stored"
    assert state.duplicates == 0


def report(
    record_property, test: str, state: EndState, started: float, **figures: int | str
) -> dict[str, object]:
    """Print one summary line and attach the figures to the test (junit xml, terminal summary)."""
    values: dict[str, object] = {
        "tickets_produced": state.produced,
        **figures,
        "missing": len(state.missing),
        "duplicates": state.duplicates,
        "extra": len(state.extra),
        "duration_s": round(time.monotonic() - started, 1),
    }
    for key, value in values.items():
        record_property(key, value)
    line = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
    print(f"\nFAULTS SUMMARY {test}: {line}", flush=True)
    return values


# --------------------------------------------------------------------------- kafka


def topic_ticket_ids(bootstrap: str, topic: str, timeout_seconds: float = 60) -> Counter[str]:
    """How many times each ticket_id was written to the topic (resends included)."""
    import json

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"faults-audit-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        assignment = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        seen: Counter[str] = Counter()
        done: set[int] = set()
        deadline = time.monotonic() + timeout_seconds
        while len(done) < len(ends) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error():
                    continue
                try:
                    seen[json.loads(message.value())["ticket_id"]] += 1
                except (ValueError, TypeError, KeyError):
                    seen["<not a ticket>"] += 1
                if message.offset() >= ends[message.partition()] - 1:
                    done.add(message.partition())
        return seen
    finally:
        consumer.close()


def new_topic(bootstrap: str, name: str, partitions: int = 3) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name
