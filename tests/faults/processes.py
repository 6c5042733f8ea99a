"""The pipeline's processes in the fault tests: each command in its own process group.

`python -m jobs.enrichment` starts a JVM child through spark-submit, so a crash is
simulated with SIGKILL to the whole group, as the kernel's OOM killer or a node loss would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.kafka import PASSWORD_ENV, KafkaConnection
from core.scrape import Samples, scrape, total, value
from core.settings import REPO_ROOT
from scripts.embedded import process_group
from tests.conftest import kafka_flags

__all__ = ["JOBS", "PYTHON", "Process", "base_env", "job_command", "log", "producer_command"]

PYTHON = sys.executable
JOBS = ("enrichment", "aggregation")
_T0 = time.monotonic()


def log(message: str) -> None:
    """A progress line on stdout (visible with `pytest -s`)."""
    print(f"[faults +{time.monotonic() - _T0:6.1f}s] {message}", flush=True)


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
    metrics_port: int | None = None
    # The last metrics scraped of each start (a killed start keeps what it showed last).
    samples_by_start: dict[int, Samples] = field(default_factory=dict)
    _terminating: bool = field(default=False, repr=False)
    _log_file: object = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self._terminating = False
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115
        self.process = process_group.spawn(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
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
        process_group.stop(self.process, 0, sig=None)
        process_group.wait_group_gone(self.process)
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
        process_group.stop(self.process, 0, sig=None)
        self._closed()
        return code

    def send_sigterm(self) -> None:
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self._terminating = True
            self.process.send_signal(signal.SIGTERM)

    def reap(self) -> int:
        """Record the exit of a process that ended on its own and clean its group."""
        code = self.process.wait()
        process_group.stop(self.process, 0, sig=None)
        self._closed()
        return code

    def scrape(self) -> Samples:
        """This start's metrics now, kept as its last ones; the last ones while it cannot
        answer (starting, or gone)."""
        if self.metrics_port is not None and self.alive:
            with contextlib.suppress(OSError):
                self.samples_by_start[self.starts] = scrape(f"http://127.0.0.1:{self.metrics_port}/metrics")
        return self.samples_by_start.get(self.starts, {})

    def batches_committed(self) -> int:
        """Micro-batches this start has committed to PostgreSQL (ticket_pipeline_batches_total)."""
        return int(value(self.scrape(), "ticket_pipeline_batches_total", job_name=self.name))

    def metric_over_starts(self, name: str, **labels: str) -> float:
        """The sum of a counter over every start, each as last scraped."""
        return sum(total(samples, name, **labels) for samples in self.samples_by_start.values())

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _closed(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            self.exit_codes.append(self.process.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def base_env(password: str, work_dir: Path, kafka: KafkaConnection) -> dict[str, str]:
    """The subprocesses' environment: the database password, SASL's password of `kafka` (the
    commands name the rest of the connection), unbuffered output, private temp dirs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("KAFKA_", "DATABASE_", "PRODUCER_", "CHECKPOINT_", "SPARK_", "TRIGGER_", "METRICS_")
        )
    }
    spark_local = work_dir / "spark-local"
    spark_local.mkdir(parents=True, exist_ok=True)
    if kafka.uses_sasl:
        env[PASSWORD_ENV] = kafka.sasl_password
    env.update(
        PGPASSWORD=password,
        PYTHONUNBUFFERED="1",
        TZ="UTC",
        # No metrics endpoint unless a command asks for one (the jobs' own free ports).
        METRICS_PORT="-1",
        # Spark's scratch space (shuffle, block manager) inside the test's folder, so
        # the dirs a SIGKILLed JVM leaves behind are removed with it.
        SPARK_LOCAL_DIRS=str(spark_local),
    )
    return env


def job_command(
    job: str,
    *,
    kafka: KafkaConnection,
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
        *kafka_flags(kafka),
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
    *, kafka: KafkaConnection, topic: str, ledger: Path, rate: float = 300, seed: int = 1, count: int = 0
) -> list[str]:
    return [
        PYTHON,
        "-m",
        "producer",
        *kafka_flags(kafka),
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
