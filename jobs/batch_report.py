"""What a job prints of each committed micro-batch: its counts and where its time went.

The line is for people; programs (the bench, the fault suite) read the same figures from the
job's metrics (jobs.metrics), which come from the same outcome.
"""

from __future__ import annotations

from jobs.batch_outcomes import BatchOutcome

__all__ = ["batch_line"]


def batch_line(outcome: BatchOutcome, details: str) -> str:
    """E.g. "batch 20: 17 valid (17 new), 0 rejected (0 new) in 0.55s (tasks 0.53s, commit 0.02s)"."""
    tasks, commit = outcome.tasks_seconds, outcome.commit_seconds
    replay = ", a replay of a committed batch: nothing written" if outcome.replayed else ""
    return (
        f"batch {outcome.batch_id}: {outcome.valid} valid ({outcome.new} new){details}{replay}"
        f" in {tasks + commit:.2f}s (tasks {tasks:.2f}s, commit {commit:.2f}s)"
    )
