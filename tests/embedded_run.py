"""`make run`'s pipeline (scripts.embedded) for a test, on free ports in the test's folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from scripts.embedded import process_group
from scripts.embedded.ports import free_port

__all__ = ["EmbeddedRun", "embedded_run", "wait_until"]

START_TIMEOUT_SECONDS = 300


@dataclass
class EmbeddedRun:
    banner: str
    kafka_port: int
    postgres_port: int
    data_dir: Path
    pid: int  # of `make run`'s own process: the broker and every service are its descendants

    def postgres_password(self) -> str:
        return (self.data_dir / "postgres" / "password").read_text().strip()


@contextmanager
def embedded_run(work_dir: Path, **env: str) -> Iterator[EmbeddedRun]:
    """Start the pipeline, yield once its banner is printed; then stop it (Ctrl-C), and remove
    what it made outside `work_dir` (PostgreSQL's files, relocated when user postgres cannot
    enter the folder), as `make clean-data` does."""
    kafka_port, postgres_port, data_dir = free_port(), free_port(), work_dir / "run"
    # Neither the session's database nor its broker (tests/conftest.py exports the latter's
    # KAFKA_* settings): make run's programs are clients of its own.
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PGPASSWORD", "PGPASSFILE") and not k.startswith("KAFKA_")
    }
    environ.update(SPARK_DRIVER_MEMORY="512m", **env)
    output = work_dir / "run.log"
    with output.open("w") as log:
        run = process_group.spawn(
            [sys.executable, "-m", "scripts.embedded", "--kafka-port", str(kafka_port),
             "--postgres-port", str(postgres_port), "--data-dir", str(data_dir)],
            cwd=REPO_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while "is running" not in output.read_text():
                if run.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"make run did not start:\n{output.read_text()[-4000:]}")
                time.sleep(1)
            yield EmbeddedRun(output.read_text(), kafka_port, postgres_port, data_dir, run.pid)
        finally:
            process_group.stop(run, 180, sig=signal.SIGINT, whole_group=True)  # as Ctrl-C does
            server = data_dir / "postgres" / "server"
            if server.is_symlink():
                shutil.rmtree(os.readlink(server), ignore_errors=True)


def wait_until(what: str, probe, timeout_seconds: float, poll_seconds: float = 1.0):
    """Poll probe() until it returns something truthy; an exception counts as "not yet".
    Fail naming `what` and the last answer."""
    deadline, last = time.monotonic() + timeout_seconds, None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as error:  # a page, a database or an API not there yet
            last = error
        else:
            if last:
                return last
        time.sleep(poll_seconds)
    pytest.fail(f"{what}: not within {timeout_seconds}s; last answer: {last!r}")
