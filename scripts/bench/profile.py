"""Where a drain spends its time: CPU per process, time per batch phase, top SQL statements.

- CPU seconds of each component (a process and all its descendants, from /proc), so a
  drain's cost splits into broker, Spark jobs, PostgreSQL and baselines on 2 cores;
- the jobs' batches, their Spark and PostgreSQL time and Spark's phases, from their metrics;
- pg_stat_statements' most expensive statements of a database.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.scrape import scrape, total

__all__ = ["CpuMeter", "batch_phases", "batch_times", "top_statements"]

_TICKS = os.sysconf("SC_CLK_TCK")


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


def batch_times(metrics_url: str) -> dict[str, float]:
    """A job's micro-batches so far, from its metrics: batches, valid rows, and the seconds of
    their two parts: the executors' tasks (read, validate, stage) and the driver's commit."""
    samples = scrape(metrics_url)
    tasks = total(samples, "ticket_pipeline_batch_duration_seconds_sum", part="tasks")
    commit = total(samples, "ticket_pipeline_batch_duration_seconds_sum", part="commit")
    return {
        "batches": int(total(samples, "ticket_pipeline_batches_total")),
        "rows": int(total(samples, "ticket_pipeline_tickets_valid_total")),
        "seconds": round(tasks + commit, 1),
        "tasks_seconds": round(tasks, 1),
        "commit_seconds": round(commit, 1),
    }


def batch_phases(metrics_url: str) -> dict[str, int]:
    """Milliseconds of each of Spark's micro-batch phases so far, from the job's metrics,
    with "batches"."""
    samples = scrape(metrics_url)
    phases = {
        dict(labels)["phase"]: round(seconds * 1000)
        for (name, labels), seconds in samples.items()
        if name == "ticket_pipeline_batch_phase_seconds_total"
    }
    return {"batches": int(total(samples, "ticket_pipeline_batches_total")), **phases}


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
