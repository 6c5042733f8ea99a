"""What the dashboard shows, read from PostgreSQL (the lag comes from dashboard.lag).

Every query returns a bounded number of rows, whatever the tables hold: one aggregate row or a
LIMIT. Reject reasons are grouped by core.contract.reason_label, not by their free-form text, so
that a million distinct reasons still make a handful of groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.contract import DETAILED_REASON_LABELS, TABLES

__all__ = ["MAX_GROUPS", "Snapshot", "read_snapshot"]

_RATE_WINDOW_SECONDS = 10
_LATENCY_WINDOW = "5 minutes"
_LATEST = 10
# Most rows of a grouped figure. Types and teams have 3 each (the routing table); reason labels
# are bounded but for a refusal of PostgreSQL, whose label is the whole reason (its message).
MAX_GROUPS = 25
# core.contract.reason_label in SQL (tests/dashboard/test_snapshot.py checks that they agree):
# split_part(..., 1) is the text before the first ": ", or all of it.
_REASON_LABEL = (
    "CASE WHEN split_part(reason, ': ', 1) = ANY(%(labels)s) THEN split_part(reason, ': ', 1) ELSE reason END"
)


@dataclass
class Snapshot:
    """One refresh of the page."""

    stored: int = 0
    rate_per_second: float = 0.0
    counts_by_type: dict[str, int] = field(default_factory=dict)
    counts_by_team: dict[str, int] = field(default_factory=dict)
    latest: list[dict] = field(default_factory=list)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    latest_rejected: list[dict] = field(default_factory=list)
    latency_p50_p95_p99: tuple[float, float, float] | None = None
    lag: dict[str, int] = field(default_factory=dict)


def read_snapshot(cur) -> Snapshot:
    """The tables' figures, in one read-only transaction (one consistent view)."""
    snapshot = Snapshot()
    cur.execute(
        "SELECT count(*), count(*) FILTER"
        f" (WHERE stored_at > now() - interval '{_RATE_WINDOW_SECONDS} seconds')"
        f" FROM {TABLES.tickets}"
    )
    snapshot.stored, recent = cur.fetchone()
    snapshot.rate_per_second = recent / _RATE_WINDOW_SECONDS
    snapshot.counts_by_type = _counts(
        cur,
        f"SELECT type, ticket_count FROM {TABLES.aggregation} WHERE ticket_count > 0"
        f" ORDER BY type LIMIT {MAX_GROUPS}",
    )
    snapshot.counts_by_team = _counts(
        cur, f"SELECT team, count(*) FROM {TABLES.tickets} GROUP BY team ORDER BY team LIMIT {MAX_GROUPS}"
    )
    snapshot.latest = _records(
        cur,
        f"SELECT ticket_id::text, client_id, type, priority, team, request, stored_at"
        f" FROM {TABLES.tickets} ORDER BY stored_at DESC, ticket_id LIMIT {_LATEST}",
    )
    snapshot.rejected_by_reason = _counts(
        cur,
        f"SELECT {_REASON_LABEL} AS label, count(*) FROM {TABLES.rejected}"
        f" GROUP BY label ORDER BY 2 DESC, 1 LIMIT {MAX_GROUPS}",
        {"labels": list(DETAILED_REASON_LABELS)},
    )
    snapshot.latest_rejected = _records(
        cur,
        f"SELECT kafka_partition, kafka_offset, reason, rejected_at FROM {TABLES.rejected}"
        f" ORDER BY rejected_at DESC LIMIT {_LATEST}",
    )
    cur.execute(
        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
        " (ORDER BY extract(epoch FROM stored_at - created_at))"
        f" FROM {TABLES.tickets} WHERE stored_at > now() - interval '{_LATENCY_WINDOW}'"
    )
    quantiles = cur.fetchone()[0]
    snapshot.latency_p50_p95_p99 = tuple(quantiles) if quantiles else None
    return snapshot


def _counts(cur, statement: str, parameters: dict | None = None) -> dict:
    """A query's (name, count) rows as {name: count}, in their order."""
    cur.execute(statement, parameters)
    return dict(cur.fetchall())


def _records(cur, statement: str) -> list[dict]:
    """A query's rows, each as a dict keyed by column name."""
    cur.execute(statement)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
