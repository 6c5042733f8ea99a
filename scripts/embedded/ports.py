"""Free loopback ports for services started by tests and benchmarks."""

from __future__ import annotations

import socket

__all__ = ["free_port", "preferred_or_free"]


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preferred_or_free(port: int) -> int:
    """`port` when nobody listens on it (on any address), else a free one."""
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return free_port()
    return port
