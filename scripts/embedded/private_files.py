"""Files that only their owner may read, from their creation on (keys, passwords)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: Path, data: bytes | str, exclusive: bool = False) -> None:
    """Write `data` to `path` with mode 0600 set at creation, not after; `exclusive` fails if it
    exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_TRUNC
    with os.fdopen(descriptor, "wb") as file:
        file.write(data.encode() if isinstance(data, str) else data)
