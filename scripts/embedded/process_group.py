"""Processes run in a session of their own, and stopped with everything they started.

A Spark job's Python driver starts a JVM through spark-submit, the broker is a JVM, `make`
starts Python: a signal to the leader alone can leave a child running with its ports. Each
such command therefore runs in its own session (process group), and a stop that has to
force ends the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any

__all__ = ["signal_group", "spawn", "stop", "wait_group_gone"]


def spawn(command: list[str], **popen: Any) -> subprocess.Popen:
    """Start `command` as the leader of a new session (Popen's other arguments as given)."""
    return subprocess.Popen(command, start_new_session=True, **popen)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the process's whole group; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def wait_group_gone(process: subprocess.Popen, timeout_seconds: float = 10) -> bool:
    """Wait until no process of the group is left (its JVMs have released their ports)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    return False


def stop(
    process: subprocess.Popen,
    timeout_seconds: float,
    *,
    sig: int | None = signal.SIGTERM,
    whole_group: bool = False,
) -> int | None:
    """Ask the process to stop with `sig` (to the leader, or to the whole group), wait up to
    `timeout_seconds`, then SIGKILL the group. `sig=None` kills at once. Returns the leader's
    exit code, or None when it had to be killed."""
    code = process.poll()
    if code is None and sig is not None:
        if whole_group:
            signal_group(process, sig)
        else:
            process.send_signal(sig)
        try:
            code = process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            code = None
    signal_group(process, signal.SIGKILL)
    if process.poll() is None:
        process.wait()
    return code
