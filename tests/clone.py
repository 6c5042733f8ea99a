"""A copy of this checkout laid out as a user's fresh clone, for tests of what a new user runs.

The copy holds the files git would clone (tracked ones, plus new ones not ignored, with their
current edits), and nothing of .venv, .local or ../shared. share_installs() then links this
checkout's virtualenv, resolved jars and helm into it, so `make` finds them installed instead
of spending minutes on pip, Maven and Go.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from core.settings import REPO_ROOT

__all__ = ["copy_checkout", "share_installs"]


def copy_checkout(dest: Path) -> Path:
    """Copy the clone-able files of this checkout into `dest` (created), keeping their mtimes."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def share_installs(clone: Path) -> list[str]:
    """Link this checkout's .venv, .local/jars and .local/bin (helm, promtool, prometheus) into
    `clone`; return make flags that keep make from reinstalling them (a reinstall would point
    the venv at the copy)."""
    (clone / ".local").mkdir(exist_ok=True)
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")
    for name in ("jars", "bin"):
        (clone / ".local" / name).symlink_to(REPO_ROOT / ".local" / name)
    kept = [
        ".venv/.installed",
        ".local/jars/.resolved",
        *(f".local/bin/{t}" for t in ("helm", "promtool", "prometheus")),
    ]
    return [flag for target in kept for flag in ("-o", target)]
