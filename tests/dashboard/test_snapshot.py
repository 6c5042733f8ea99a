"""The snapshot's reject reasons: grouped by core.contract.reason_label in SQL, whatever free
text the records put in them, and never more than MAX_GROUPS rows."""

from __future__ import annotations

from collections import Counter

import psycopg2
import pytest

from core.contract import FIELDS, REASONS, TABLES, reason_label
from dashboard.snapshot import MAX_GROUPS, read_snapshot

pytestmark = pytest.mark.integration


def _insert_rejects(database_url: str, reasons: list[str]) -> None:
    """Store one dead letter per reason, at offsets 0, 1, 2... of a topic of its own."""
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {TABLES.rejected} (kafka_topic, kafka_partition, kafka_offset, reason)"
            " VALUES ('rejects', 0, %s, %s)",
            list(enumerate(reasons)),
        )
    conn.close()


def _snapshot_reasons(reader_url: str) -> dict[str, int]:
    """The snapshot's rejects per reason, read as the dashboard reads: the reader role, read-only."""
    conn = psycopg2.connect(reader_url)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            return read_snapshot(cur).rejected_by_reason
    finally:
        conn.close()


def _expected(reasons: list[str]) -> dict[str, int]:
    """reason_label's groups, the most frequent first (the counts below are all distinct)."""
    return dict(Counter(reason_label(r) for r in reasons).most_common(MAX_GROUPS))


def test_every_kind_of_reason_is_grouped_by_its_reason_label(database_url, reader_url) -> None:
    """One label per reason kind and field, each with its own count and a distinct detail in
    each record: the SQL grouping gives the labels and counts of core.contract.reason_label,
    the most frequent MAX_GROUPS of them."""
    samples: dict[str, list[str]] = {}
    for kind in REASONS:
        for field in FIELDS:
            text = kind.text(field=field.name, detail="{}")
            samples.setdefault(reason_label(text.format("x")), []).append(text)
    reasons = []
    for count, (_, texts) in enumerate(sorted(samples.items()), start=1):
        reasons += [texts[0].format(f"'value {n}'") for n in range(count)]
    assert len(samples) > MAX_GROUPS  # so the LIMIT is exercised too
    _insert_rejects(database_url, reasons)
    assert _snapshot_reasons(reader_url) == _expected(reasons)


def test_many_distinct_reasons_make_a_bounded_number_of_rows(database_url, reader_url) -> None:
    """3,000 records, each with its own free text (unknown values, sizes, unexpected field names,
    PostgreSQL refusals that keep their whole text as label), make at most MAX_GROUPS rows; the
    free-form ones count under their label."""
    reasons = [f"unknown type: 'attacker {n}'" for n in range(1500)]
    reasons += [f"record too large: {70000 + n} bytes" for n in range(900)]
    reasons += [f"unexpected field: 'f{n}'" for n in range(500)]
    reasons += [f"refused by PostgreSQL: 22001 value too long {n:03d}" for n in range(100)]
    _insert_rejects(database_url, reasons)
    shown = _snapshot_reasons(reader_url)
    assert len(shown) == MAX_GROUPS
    most = [("unknown type", 1500), ("record too large", 900), ("unexpected field", 500)]
    assert list(shown.items())[:3] == most
    assert sum(shown.values()) == 2900 + MAX_GROUPS - 3
