"""Notices when queued tickets stop being acknowledged for too long."""

from __future__ import annotations

__all__ = ["StallWatch"]


class StallWatch:
    """Tracks the acknowledged count; says when it has not moved for `timeout_seconds`
    while tickets wait. A timeout of 0 never reports a stall."""

    def __init__(self, timeout_seconds: float, now: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._acknowledged = 0
        self._since = now

    def stalled_for(self, acknowledged: int, waiting: int, now: float) -> float:
        """Seconds without progress once past the timeout, else 0."""
        if acknowledged != self._acknowledged or waiting == 0:
            self._acknowledged, self._since = acknowledged, now
            return 0.0
        stalled = now - self._since
        return stalled if self.timeout_seconds and stalled >= self.timeout_seconds else 0.0

    def restart(self, now: float) -> None:
        """Count the timeout again from now (after a probe or a client restart)."""
        self._since = now
