"""Notices a job that keeps restarting on the same micro-batch, and names that batch.

Spark writes a batch's offsets to <checkpoint>/offsets/N before it runs it, and
<checkpoint>/commits/N once it is done. A job that starts with offsets/N but no commits/N
replays batch N. `note_start` counts such starts in a small file of ours beside Spark's
(ATTEMPTS_FILE), so that the count survives the restarts that a crashing job goes through.
Only checkpoints on a file system path are watched (an object store URL is skipped).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = ["ATTEMPTS_FILE", "STUCK_AFTER_ATTEMPTS", "BatchAttempt", "note_start"]

logger = logging.getLogger(__name__)

ATTEMPTS_FILE = "ticket-pipeline-attempts.json"
# From this many starts on the same batch, the job is said to be stuck on it.
STUCK_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class BatchAttempt:
    """A start on a batch that an earlier start of the job did not finish: the batch, how many
    starts it has had, and its Kafka offsets (from, to) as Spark wrote them."""

    batch_id: int
    attempts: int
    start: str
    end: str

    @property
    def stuck(self) -> bool:
        return self.attempts >= STUCK_AFTER_ATTEMPTS

    def describe(self) -> str:
        return f"micro-batch {self.batch_id} (offsets {self.start} to {self.end})"


class _Pending(NamedTuple):
    batch_id: int
    end: str
    start: str


def note_start(checkpoint_dir: str) -> BatchAttempt | None:
    """Count this start if it resumes an unfinished batch; None when there is none to resume."""
    root = _local_path(checkpoint_dir)
    if root is None or not (root / "offsets").is_dir():
        return None
    pending = _pending_batch(root)
    record = root / ATTEMPTS_FILE
    if pending is None:
        record.unlink(missing_ok=True)
        return None
    try:
        previous = json.loads(record.read_text())
    except (OSError, ValueError):
        previous = {}
    attempts = previous.get("attempts", 0) + 1 if previous.get("batch_id") == pending.batch_id else 1
    record.write_text(json.dumps({"batch_id": pending.batch_id, "attempts": attempts}))
    return BatchAttempt(pending.batch_id, attempts, pending.start, pending.end)


def _local_path(checkpoint_dir: str) -> Path | None:
    if checkpoint_dir.startswith("file:"):
        return Path(checkpoint_dir.removeprefix("file:").removeprefix("//"))
    return None if "://" in checkpoint_dir else Path(checkpoint_dir)


def _batch_ids(folder: Path) -> set[int]:
    return {int(p.name) for p in folder.glob("[0-9]*") if p.name.isdigit()} if folder.is_dir() else set()


def _pending_batch(root: Path) -> _Pending | None:
    planned = _batch_ids(root / "offsets")
    if not planned:
        return None
    latest = max(planned)
    if latest in _batch_ids(root / "commits"):
        return None
    start = _source_offsets(root / "offsets" / str(latest - 1)) if latest - 1 in planned else "the start"
    return _Pending(latest, _source_offsets(root / "offsets" / str(latest)), start)


def _source_offsets(path: Path) -> str:
    """The Kafka offsets of an offsets file: its last line, {"topic": {"partition": offset}}."""
    try:
        return path.read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return "unknown"
