"""Fault-injection tests: the `faults` marker, the random seed, and a summary of the figures.

Run them with `.venv/bin/python -m pytest tests/faults -s` (`-s` shows the progress
lines while they run). The kill points are random; the seed is printed, and
`FAULTS_SEED=<seed>` replays the same schedule.
"""

from __future__ import annotations

import os
import random
import time

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "faults: fault injection against the real broker, PostgreSQL and Spark (kill -9, outages)",
    )


@pytest.fixture
def fault_random(request) -> random.Random:
    """A seeded random generator for the fault schedule; the seed is logged to replay it."""
    seed = int(os.environ.get("FAULTS_SEED") or time.time_ns() % 1_000_000)
    print(f"\n[faults] {request.node.name}: FAULTS_SEED={seed}", flush=True)
    request.node.user_properties.append(("seed", seed))
    return random.Random(seed)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line per fault test with its figures, even without -s."""
    lines = []
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when != "call" or "tests/faults/" not in report.nodeid:
                continue
            figures = ", ".join(f"{k} {v}" for k, v in report.user_properties)
            name = report.nodeid.split("::")[-1]
            lines.append(f"{outcome.upper():6} {name} ({report.duration:.0f}s): {figures}")
    if lines:
        terminalreporter.section("fault figures")
        for line in lines:
            terminalreporter.write_line(line)
