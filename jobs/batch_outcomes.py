"""What a committed micro-batch did, sent from the sink's commit to the job's driver process.

The sink commits each micro-batch in a Python worker that Spark starts beside the driver
(jobs.staged_sink), not in the driver's own Python process, which serves the metrics and
prints the batch lines. The commit therefore sends a BatchOutcome, as one JSON datagram,
to a Unix socket that the driver process listens on (OutcomeChannel): local to the
driver's host (or pod), in a folder only its user can enter. A lost outcome costs a
metric update and a log line, never a ticket: the batch is committed before it is sent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = ["BatchOutcome", "OutcomeChannel", "send_outcome"]

logger = logging.getLogger(__name__)

# The largest outcome: counts and a few sample rows (SAMPLE_ROWS at most, previews only).
_MAX_DATAGRAM_BYTES = 64 * 1024
SAMPLE_ROWS = 50


@dataclass
class BatchOutcome:
    """One committed micro-batch of one job, as its driver reports it."""

    job: str
    batch_id: int
    # True when the query had already committed this batch (a replay): it changed nothing.
    replayed: bool = False
    read: int = 0
    valid_by_type: dict[str, int] = field(default_factory=dict)
    rejected_by_label: dict[str, int] = field(default_factory=dict)
    # Valid tickets: newly stored (or counted), replacing a stored copy, refused by PostgreSQL.
    new: int = 0
    replaced: int = 0
    refused: int = 0
    rejected: int = 0
    rejected_new: int = 0
    # The aggregation's change per type.
    changes: dict[str, int] = field(default_factory=dict)
    # Latency at commit of the batch's valid tickets: counts per bucket of
    # jobs.metrics.LATENCY_BUCKETS (+Inf last), and their sum in seconds.
    latency_counts: list[int] = field(default_factory=list)
    latency_sum: float = 0.0
    # The executors' tasks (read, validate, stage), from the first start to the last end,
    # then the driver's commit transaction.
    tasks_seconds: float = 0.0
    commit_seconds: float = 0.0
    database_retries: int = 0
    sample: list[dict] = field(default_factory=list)
    rejected_sample: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return sum(self.valid_by_type.values())

    @property
    def already_stored(self) -> int:
        return self.valid - self.refused - self.new

    def encode(self) -> bytes:
        data = json.dumps(asdict(self), default=str).encode()
        if len(data) > _MAX_DATAGRAM_BYTES:
            data = json.dumps(asdict(self) | {"sample": [], "rejected_sample": []}, default=str).encode()
        return data

    @classmethod
    def decode(cls, data: bytes) -> BatchOutcome:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(data).items() if k in known})


def send_outcome(path: str, outcome: BatchOutcome) -> None:
    """Send `outcome` to the channel at `path`; a channel that is gone is logged, not raised."""
    if not path:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(outcome.encode(), path)
    except OSError as e:
        logger.warning(
            "%s batch %d: outcome not reported to the driver: %s", outcome.job, outcome.batch_id, e
        )


class OutcomeChannel:
    """A Unix datagram socket in a private folder, and a thread handing each outcome to
    `handle` (which must not raise: an error is logged and the next outcome handled)."""

    def __init__(self, handle: Callable[[BatchOutcome], None]) -> None:
        self._handle = handle
        self._folder = Path(tempfile.mkdtemp(prefix="ticket-pipeline-outcomes-"))
        os.chmod(self._folder, 0o700)
        self.path = str(self._folder / "outcomes.sock")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._thread = threading.Thread(target=self._serve, name="batch-outcomes", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data = self._socket.recv(_MAX_DATAGRAM_BYTES)
            except OSError:
                return  # closed
            if not data:
                return
            try:
                self._handle(BatchOutcome.decode(data))
            except Exception:
                logger.exception("a batch outcome could not be reported")

    def close(self) -> None:
        """Stop listening, after the outcomes already received are handled."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"", self.path)  # wakes the thread, which ends on it
        self._thread.join(5)
        self._socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            self._folder.rmdir()
