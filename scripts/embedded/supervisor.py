"""Runs the pipeline's processes side by side, prefixes their logs, restarts crashed ones.

A process that exits with 0 has finished its work (a producer with PRODUCER_COUNT set): it stays
finished, and the others keep running. Any other exit is a crash, restarted after a delay.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.terminal_text import escape_controls
from scripts.embedded import process_group

__all__ = ["Service", "Supervisor"]

logger = logging.getLogger(__name__)

_RESTART_DELAY_SECONDS = 5.0
_STOP_TIMEOUT_SECONDS = 60.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Service:
    """A long-running command, restarted when it crashes (exits with a code other than 0)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    finished: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)


class Supervisor:
    """Starts services, streams their output with a name prefix, stops them on request."""

    def __init__(
        self,
        services: list[Service],
        out: IO[str] = sys.stdout,
        restart_delay_seconds: float = _RESTART_DELAY_SECONDS,
    ) -> None:
        self.services = services
        self._out = out
        self._restart_delay_seconds = restart_delay_seconds
        self._stopping = threading.Event()
        self._width = max(len(s.name) for s in services)
        self._print_lock = threading.Lock()
        self._previous_handlers: dict[signal.Signals, Any] = {}

    def start(self) -> None:
        for service in self.services:
            self._spawn(service)

    def run_until_stopped(self) -> None:
        """Block until SIGINT/SIGTERM, or until every service has finished; restart crashed ones.

        The signals only set the stop flag until stop() has finished, which restores their handlers.
        """
        for sig in _STOP_SIGNALS:
            self._previous_handlers[sig] = signal.signal(sig, lambda *_: self._stopping.set())
        while not self._stopping.wait(1):
            for service in self.services:
                code = None if service.finished or not service.process else service.process.poll()
                if code is None or self._stopping.is_set():
                    continue
                if code == 0:
                    service.finished = True
                    logger.info(
                        "%s finished its work (exit 0): not restarted; the others keep running", service.name
                    )
                    continue
                service.restarts += 1
                logger.warning(
                    "%s exited with %s; restarting in %.0fs (restart %d)",
                    service.name,
                    code,
                    self._restart_delay_seconds,
                    service.restarts,
                )
                if self._stopping.wait(self._restart_delay_seconds):
                    break
                self._spawn(service)
            if all(service.finished for service in self.services):
                logger.info("every process finished its work")
                return

    def stop(self) -> None:
        """SIGTERM every service (they flush and commit), then wait; SIGKILL stragglers."""
        self._stopping.set()
        for service in self.services:
            if service.process and service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
        for service in self.services:
            if service.process is None:
                continue
            try:
                service.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", service.name)
            process_group.stop(service.process, 0, sig=None)
            if service._log:
                service._log.close()
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)

    def _spawn(self, service: Service) -> None:
        service.log_file.parent.mkdir(parents=True, exist_ok=True)
        if service._log is None:
            service._log = open(service.log_file, "ab")  # noqa: SIM115
        # A session of its own: Ctrl-C reaches the supervisor only, which stops children in order.
        service.process = process_group.spawn(
            service.command,
            env=service.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        threading.Thread(target=self._pump, args=(service, service.process), daemon=True).start()

    def _pump(self, service: Service, process: subprocess.Popen) -> None:
        prefix = f"{service.name:<{self._width}} | "
        for line in iter(process.stdout.readline, b""):
            service._log.write(line)
            service._log.flush()
            # A line may quote what a sender chose (a ticket's text): no escape sequence of it
            # reaches the terminal. Tabs (stack traces) and backslashes stay as they are.
            text = escape_controls(line.decode(errors="replace").rstrip("\r\n"), keep="\t\\")
            with self._print_lock:
                self._out.write(f"{prefix}{text}\n")
                self._out.flush()
