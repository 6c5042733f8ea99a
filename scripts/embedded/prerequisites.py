"""Checks for what the embedded stack needs on the machine, with how to install it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["MissingPrerequisite", "find_postgres_bin", "require_java"]

_JAVA_HINT = "install Java 17: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
_POSTGRES_HINT = "install the PostgreSQL server: apt-get install postgresql"


class MissingPrerequisite(RuntimeError):
    """Something the embedded stack needs is not installed."""


def require_java(minimum: int = 17) -> str:
    """Return the java executable; raise MissingPrerequisite unless it is Java >= minimum."""
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite(f"java not found on PATH: {_JAVA_HINT}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < minimum:
        raise MissingPrerequisite(f"Java {minimum}+ is required, found: {out.splitlines()[:1]}")
    return java


def find_postgres_bin() -> Path:
    """Return the folder holding initdb, pg_ctl and postgres (newest installed version)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise MissingPrerequisite(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {_POSTGRES_HINT}")
    return versions[-1].parent
