"""Where a drain spends its time: CPU per process, time per batch phase, top SQL statements.

- CPU seconds of each component (a process and all its descendants, from /proc), so a
  drain's cost splits into broker, Spark jobs, PostgreSQL and baselines on 2 cores;
- the jobs' batch lines ("in 1.23s (spark 0.80s, postgres 0.43s)") summed per job;
- pg_stat_statements' most expensive statements of a database.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["CpuMeter", "batch_phases", "batch_times", "top_statements"]

_TICKS = os.sysconf("SC_CLK_TCK")
_BATCH_TIMES = re.compile(
    r"^batch \d+: (\d+) valid.* in ([\d.]+)s \(spark ([\d.]+)s, postgres ([\d.]+)s\)$", re.M
)


def _processes() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds used so far) for every live process, including its
    children that have exited and been waited for (a PostgreSQL backend, once closed)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
        table[int(entry.name)] = (int(fields[1]), (utime + stime + cutime + cstime) / _TICKS)
    return table


def _tree_cpu(root: int, table: dict[int, tuple[int, float]]) -> float:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0, 0.0))[1]
        stack.extend(children.get(pid, []))
    return total


class CpuMeter:
    """CPU seconds used by named process trees between `start()` and `stop()`."""

    def __init__(self, roots: dict[str, int]) -> None:
        self._roots = roots
        self._before: dict[str, float] = {}

    def start(self) -> None:
        table = _processes()
        self._before = {name: _tree_cpu(pid, table) for name, pid in self._roots.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds per component since start (a process that exited without being
        waited for by one of the tree is lost)."""
        table = _processes()
        return {
            name: round(_tree_cpu(pid, table) - self._before[name], 1) for name, pid in self._roots.items()
        }


def batch_times(log: Path) -> dict[str, float]:
    """Sum of a job's batch lines: batches, rows, total / spark / postgres seconds."""
    rows = batches = 0
    total = spark = postgres = 0.0
    for match in _BATCH_TIMES.finditer(log.read_text(errors="replace")):
        batches += 1
        rows += int(match.group(1))
        total += float(match.group(2))
        spark += float(match.group(3))
        postgres += float(match.group(4))
    return {
        "batches": batches,
        "rows": rows,
        "seconds": round(total, 1),
        "spark_seconds": round(spark, 1),
        "postgres_seconds": round(postgres, 1),
    }


_PHASES = re.compile(r"ms by batch phase, (\d+) batches: (.*)$", re.M)


def batch_phases(log: Path) -> dict[str, int]:
    """The last sums of Spark's micro-batch phases a job logged (ms), with "batches"."""
    matches = list(_PHASES.finditer(log.read_text(errors="replace")))
    if not matches:
        return {}
    batches, pairs = matches[-1].groups()
    return {"batches": int(batches), **{k: int(v) for k, v in (p.split("=") for p in pairs.split())}}


def top_statements(conn, limit: int = 5) -> list[dict]:
    """The statements of this database that took the most time (pg_stat_statements)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls,"
            " round(total_exec_time::numeric / 1000, 1), rows"
            " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() ORDER BY total_exec_time DESC LIMIT %s",
            (limit,),
        )
        return [
            {"statement": q, "calls": calls, "seconds": float(seconds), "rows": rows}
            for q, calls, seconds, rows in cur.fetchall()
        ]
