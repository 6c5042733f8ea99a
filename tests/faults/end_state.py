"""The end state of a fault test, checked against the producer's ledger (every acknowledged
ticket_id): `tickets` must hold exactly the ledger's ids, and the aggregation must equal
the GROUP BY over `tickets`."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tests.faults.database import query
from tests.faults.pipeline import Pipeline
from tests.faults.processes import log

__all__ = ["EndState", "assert_exact", "end_state", "report", "wait_until_drained"]


@dataclass
class EndState:
    produced: int  # ledger lines: tickets the producer had acknowledged
    ledger_distinct: int
    stored: int  # rows in tickets
    stored_distinct: int
    missing: list[str]  # in the ledger, not in tickets
    extra: list[str]  # in tickets, not in the ledger
    aggregation: dict[str, int]
    group_by: dict[str, int]
    seen: int  # rows in tickets_aggregation_seen

    @property
    def duplicates(self) -> int:
        """Ids present more than once: in the ledger, in tickets, or counted more than once."""
        counted_twice = max(0, sum(self.aggregation.values()) - self.stored)
        return (self.produced - self.ledger_distinct) + (self.stored - self.stored_distinct) + counted_twice

    @property
    def drained(self) -> bool:
        return (
            self.stored == self.produced
            and not self.missing
            and not self.extra
            and self.aggregation == self.group_by
        )


def end_state(database_url: str, password: str, ledger: list[str]) -> EndState:
    ids = query(database_url, password, "SELECT ticket_id::text FROM tickets")
    stored = [row[0] for row in ids]
    stored_set, ledger_set = set(stored), set(ledger)
    aggregation = dict(
        query(
            database_url,
            password,
            "SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0",
        )
    )
    group_by = dict(query(database_url, password, "SELECT type, count(*) FROM tickets GROUP BY type"))
    seen = query(database_url, password, "SELECT count(*) FROM tickets_aggregation_seen")[0][0]
    return EndState(
        produced=len(ledger),
        ledger_distinct=len(ledger_set),
        stored=len(stored),
        stored_distinct=len(stored_set),
        missing=sorted(ledger_set - stored_set),
        extra=sorted(stored_set - ledger_set),
        aggregation={k: int(v) for k, v in aggregation.items()},
        group_by={k: int(v) for k, v in group_by.items()},
        seen=int(seen),
    )


def wait_until_drained(pipeline: Pipeline, ledger: list[str], timeout_seconds: float = 150) -> EndState:
    """Supervise the jobs until tickets == ledger and aggregation == GROUP BY, or the timeout."""
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    while True:
        stored, counted = pipeline.progress.maybe_log()
        if stored == len(ledger) and counted == len(ledger):
            state = end_state(pipeline.database_url, pipeline.password, ledger)
            if state.drained:
                log(f"drained in {time.monotonic() - started:.1f}s: {stored} tickets, {counted} counted")
                return state
        if time.monotonic() > deadline:
            log(f"NOT drained after {timeout_seconds:g}s")
            return end_state(pipeline.database_url, pipeline.password, ledger)
        pipeline.sleep(1)


def assert_exact(state: EndState, pipeline: Pipeline | None = None) -> None:
    """tickets == ledger (none missing, none extra, none twice); aggregation == GROUP BY."""
    context = f"\n{pipeline.tails()}" if pipeline is not None and not state.drained else ""
    assert state.produced > 0, "the producer acknowledged no ticket"
    assert state.ledger_distinct == state.produced, "the ledger holds an acknowledged ticket_id twice"
    assert not state.missing, f"{len(state.missing)} tickets missing, e.g. {state.missing[:5]}{context}"
    assert not state.extra, f"{len(state.extra)} tickets not in the ledger, e.g. {state.extra[:5]}{context}"
    assert state.stored == state.stored_distinct == state.produced
    assert state.aggregation == state.group_by, (
        f"aggregation {state.aggregation} != GROUP BY {state.group_by}{context}"
    )
    assert state.seen == state.stored, f"{state.seen} ids counted, {state.stored} tickets stored"
    assert state.duplicates == 0


def report(
    record_property, test: str, state: EndState, started: float, **figures: int | str
) -> dict[str, object]:
    """Print one summary line and attach the figures to the test (junit xml, terminal summary)."""
    values: dict[str, object] = {
        "tickets_produced": state.produced,
        **figures,
        "missing": len(state.missing),
        "duplicates": state.duplicates,
        "extra": len(state.extra),
        "duration_s": round(time.monotonic() - started, 1),
    }
    for key, value in values.items():
        record_property(key, value)
    line = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
    print(f"\nFAULTS SUMMARY {test}: {line}", flush=True)
    return values
