"""Print the pip requirements of the Spark image, derived from pyproject.toml.

The image needs the project's runtime dependencies plus its ``jobs`` extra, except pyspark:
apache/spark ships PySpark with the very Spark it runs (same version, checked by tests/k8s).
pyproject.toml stays the one source of truth for versions and constraints.

Usage (images/spark/Dockerfile): python3.11 jobs_requirements.py pyproject.toml > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

__all__ = ["PROVIDED_BY_IMAGE", "jobs_requirements"]

# Distributions the apache/spark base image already provides.
PROVIDED_BY_IMAGE = frozenset({"pyspark"})

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalized_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def jobs_requirements(pyproject: Path, extra: str = "jobs") -> list[str]:
    """Return the runtime dependencies plus ``extra``, minus what the base image provides."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = [*project.get("dependencies", []), *project["optional-dependencies"][extra]]
    return [r for r in requirements if _normalized_name(r) not in PROVIDED_BY_IMAGE]


if __name__ == "__main__":
    print("\n".join(jobs_requirements(Path(sys.argv[1]))))
