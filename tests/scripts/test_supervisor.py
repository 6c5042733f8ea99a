"""`make run`'s supervisor, with real child processes: finished work stays finished, crashes restart."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from scripts.embedded.supervisor import Service, Supervisor


def python_service(tmp_path: Path, name: str, code: str) -> Service:
    """A service running `python -c code`; each start prints 'started' into its log."""
    return Service(
        name, [sys.executable, "-c", f"print('started', flush=True)\n{code}"], dict(os.environ),
        tmp_path / f"{name}.log",
    )  # fmt: skip


def starts(service: Service) -> int:
    return service.log_file.read_text().count("started")


def test_should_leave_a_finished_process_alone_and_restart_a_crashed_one(tmp_path, caplog) -> None:
    """A process that exits 0 is not started again, and the supervisor says so once; one that
    exits 3 is restarted after the delay; a long-running one keeps running until the stop."""
    finished = python_service(tmp_path, "finished", "pass")
    crashing = python_service(tmp_path, "crashing", "raise SystemExit(3)")
    running = python_service(tmp_path, "running", "import time; time.sleep(120)")
    supervisor = Supervisor([finished, crashing, running], out=io.StringIO(), restart_delay_seconds=0.2)
    supervisor.start()
    stopper = threading.Timer(6, os.kill, (os.getpid(), signal.SIGTERM))
    stopper.start()
    try:
        with caplog.at_level(logging.INFO, logger="scripts.embedded.supervisor"):
            supervisor.run_until_stopped()
    finally:
        stopper.cancel()
        supervisor.stop()
    assert finished.finished and finished.restarts == 0 and starts(finished) == 1
    assert caplog.text.count("finished finished its work (exit 0): not restarted") == 1
    # The last restart may be stopped before it printed.
    assert crashing.restarts >= 2 and crashing.restarts <= starts(crashing) <= crashing.restarts + 1
    assert "crashing exited with 3; restarting" in caplog.text
    assert starts(running) == 1 and running.process.returncode == -signal.SIGTERM
    # The supervisor gave the signals back: SIGTERM is no longer its own.
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)


@pytest.mark.timeout(60)
def test_should_return_by_itself_once_every_process_has_finished(tmp_path, caplog) -> None:
    """With nothing left running, run_until_stopped returns without a signal."""
    services = [python_service(tmp_path, name, "pass") for name in ("one", "two")]
    supervisor = Supervisor(services, out=io.StringIO())
    supervisor.start()
    with caplog.at_level(logging.INFO, logger="scripts.embedded.supervisor"):
        supervisor.run_until_stopped()
    supervisor.stop()
    assert all(s.finished and starts(s) == 1 for s in services)
    assert "every process finished its work" in caplog.text


@pytest.mark.timeout(60)
def test_should_show_a_services_control_characters_escaped(tmp_path) -> None:
    """A line a service prints with ESC, CSI and a carriage return in it (a ticket's text quoted
    in a log) reaches the terminal escaped, prefixed, on one line; tabs and backslashes stay.
    The service's log file keeps the bytes as they were."""
    code = r"print('x\x1b[2J\x9b1;1H\rforged \\ \tend', flush=True)"
    service = python_service(tmp_path, "hostile", code)
    out = io.StringIO()
    supervisor = Supervisor([service], out=out)
    supervisor.start()
    try:
        supervisor.run_until_stopped()
    finally:
        supervisor.stop()
    assert "hostile | x\\x1b[2J\\x9b1;1H\\x0dforged \\ \tend\n" in out.getvalue()
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert "x\x1b[2J\x9b1;1H\rforged \\ \tend".encode() in service.log_file.read_bytes()
