"""Dead letters older than the retention are deleted, as the jobs' own role, in slices."""

from __future__ import annotations

import psycopg2
import pytest

from jobs import retention
from jobs.retention import DeadLetterRetention
from tests.jobs.test_pipeline import fetch

pytestmark = pytest.mark.integration


def add_letters(database_url: str, ages_days: list[float]) -> None:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        for offset, age in enumerate(ages_days):
            cur.execute(
                "INSERT INTO tickets_rejected"
                " (kafka_topic, kafka_partition, kafka_offset, reason, rejected_at)"
                " VALUES ('t', 0, %s, 'not JSON', now() - make_interval(secs => %s))",
                (offset, age * 86400),
            )
    conn.close()


def test_expired_dead_letters_are_deleted_and_the_others_kept(database_url, writer_url, monkeypatch):
    """With 1 day of retention, the 25 letters of 2 days ago go (in slices of 10) and the 3
    of an hour ago stay; a second call within the interval does nothing; 0 keeps all."""
    monkeypatch.setattr(retention, "_SLICE_ROWS", 10)
    add_letters(database_url, [2.0] * 25 + [1 / 24] * 3)
    assert DeadLetterRetention(writer_url, days=0).prune_if_due() == 0
    pruner = DeadLetterRetention(writer_url, days=1)
    assert pruner.prune_if_due() == 25
    add_letters(database_url, [3.0])  # offset 0 again: its old row is gone, so it is new
    assert pruner.prune_if_due() == 0
    pruner.close()
    assert fetch(database_url, "SELECT count(*) FROM tickets_rejected") == [(4,)]
