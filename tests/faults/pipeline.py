"""The producer and both jobs run together, supervised as `make run` or the Spark operator
would: a job that exits on its own is restarted after a short delay, and counted."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

from core.kafka import KafkaConnection
from core.scrape import value
from tests.conftest import free_port
from tests.faults.database import counts
from tests.faults.processes import JOBS, Process, base_env, job_command, log, producer_command

__all__ = ["OUTAGE_SECONDS", "Pipeline", "Progress", "outage_pipeline", "stop_for_a_while"]

# A job restarted by the supervisor waits this long first (make run waits 5 s).
RESTART_DELAY_SECONDS = 2.0
OUTAGE_SECONDS = 20


class Pipeline:
    """The producer and both jobs; restarts a job that exits on its own (counted)."""

    def __init__(
        self,
        *,
        kafka: KafkaConnection,
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
        env = base_env(password, work_dir, kafka)
        logs = work_dir / "logs"
        self.jobs: dict[str, Process] = {}
        for job in JOBS:
            command = job_command(
                job,
                kafka=kafka,
                topic=topic,
                database_url=database_url,
                checkpoint_dir=work_dir / "checkpoints" / job,
                max_offsets_per_trigger=max_offsets_per_trigger,
                database_retry_seconds=database_retry_seconds,
            )
            # A UI and a metrics port of its own (restarts keep them), not the defaults that a
            # `make run` may hold.
            ui_port, metrics_port = free_port(), free_port()
            command += ["--ui-port", str(ui_port), "--metrics-port", str(metrics_port)]
            self.jobs[job] = Process(job, command, env, logs, ui_port=ui_port, metrics_port=metrics_port)
        self.producer = Process(
            "producer",
            producer_command(kafka=kafka, topic=topic, ledger=self.ledger, rate=rate, seed=seed),
            env,
            logs,
        )
        self.kills: list[tuple[float, str, int]] = []  # (time, job, batches seen by that start)
        self.restarts: Counter[str] = Counter()  # supervised restarts after an exit of its own
        self.unexpected_exits: list[tuple[str, int, str]] = []  # (job, code, log tail)
        self._restart_at: dict[str, float] = {}
        self._next_scrape = 0.0
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

    def start_flowing(self) -> None:
        """Start the jobs, then the producer once the drivers are up (so that the backlog
        stays small), and wait for the first rows of both tables."""
        self.start_jobs()
        self.wait_until_jobs_up()
        self.start_producer()
        self.wait_for_rows(tickets=1, counted=1, timeout_seconds=180)

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
            job.scrape()
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
        batches = job.batches_committed()
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
        if now >= self._next_scrape:  # each start's metrics as it goes, for the counts above
            self._next_scrape = now + 1.0
            for job in self.jobs.values():
                job.scrape()
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
        """Wait until the job has committed `batches` more micro-batches (its metrics; counted
        anew after a restart).

        The counter rises right after a batch's database commit, before Spark's checkpoint
        commit, which takes about a tenth of a second more: a small `poll_seconds` (a scrape
        takes a few milliseconds) returns within that window.
        """
        job = self.jobs[name]
        start, target = job.starts, job.batches_committed() + batches
        deadline = time.monotonic() + timeout_seconds
        next_supervise = 0.0
        while True:
            if job.starts != start:
                start, target = job.starts, batches
            if job.batches_committed() >= target:
                return
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(
                    f"{name} committed fewer than {batches} new batches in {timeout_seconds:g}s:"
                    f"\n{job.tail()}"
                )
            if now >= next_supervise:
                self.supervise()
                self.progress.log_if_due()
                next_supervise = now + 0.25
            time.sleep(poll_seconds)

    def replayed_batches(self) -> list[str]:
        """Restarted starts of the jobs that found tickets already stored, from their metrics.

        That is the proof that a kill landed between a batch's database commit and
        Spark's checkpoint commit, and that the replay added nothing.
        """
        replays = []
        for name, job in self.jobs.items():
            for start, samples in sorted(job.samples_by_start.items()):
                stored = "ticket_pipeline_tickets_stored_total"
                again = value(samples, stored, job_name=name, outcome="already_stored")
                if start > 1 and again:
                    new = value(samples, stored, job_name=name, outcome="new")
                    replays.append(f"{name}.{start}: {again:.0f} tickets already stored, {new:.0f} new")
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

    def database_retries(self) -> int:
        """Transactions the jobs retried after an outage, every start included (metrics)."""
        return int(
            sum(
                job.metric_over_starts("ticket_pipeline_database_retries_total") for job in self.jobs.values()
            )
        )

    def tails(self) -> str:
        return "\n".join(
            f"--- {p.name} ({p.log_path.name}) ---\n{p.tail()}" for p in (self.producer, *self.jobs.values())
        )

    def _start_job(self, job: Process) -> None:
        job.start()
        log(f"{job.name} started (start {job.starts}, pid {job.process.pid})")


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


OUTAGE_SECONDS = 20


def outage_pipeline(
    *, kafka: KafkaConnection, topic: str, database_url: str, password: str, work_dir: Path, rng
) -> Pipeline:
    """A pipeline for an outage test, its jobs up and tickets flowing when it returns.

    Bigger batches than the kill test's: an outage test needs no many-batch window,
    and the backlog of the outage drains faster. Production starts once the drivers
    are up, so that the backlog stays small; the outage then comes 0 to 2 s after the
    first rows, at a random point of a batch.
    """
    pipeline = Pipeline(
        kafka=kafka,
        topic=topic,
        database_url=database_url,
        password=password,
        work_dir=work_dir,
        rate=300,
        seed=rng.randrange(1 << 30),
        max_offsets_per_trigger=2000,
    )
    try:
        pipeline.start_flowing()
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
