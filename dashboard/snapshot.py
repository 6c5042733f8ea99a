"""What the dashboard shows, read from PostgreSQL and from the Kafka consumer groups."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from core.contract import TABLES

__all__ = ["LagReader", "Snapshot", "read_snapshot"]

_RATE_WINDOW_SECONDS = 10
_LATENCY_WINDOW = "5 minutes"
_LATEST = 10


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
        cur, f"SELECT type, ticket_count FROM {TABLES.aggregation} WHERE ticket_count > 0 ORDER BY type"
    )
    snapshot.counts_by_team = _counts(
        cur, f"SELECT team, count(*) FROM {TABLES.tickets} GROUP BY team ORDER BY team"
    )
    snapshot.latest = _records(
        cur,
        f"SELECT ticket_id::text, client_id, type, priority, team, request, stored_at"
        f" FROM {TABLES.tickets} ORDER BY stored_at DESC, ticket_id LIMIT {_LATEST}",
    )
    snapshot.rejected_by_reason = _counts(
        cur, f"SELECT reason, count(*) FROM {TABLES.rejected} GROUP BY reason ORDER BY 2 DESC, 1"
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


def _counts(cur, statement: str) -> dict:
    """A query's (name, count) rows as {name: count}, in their order."""
    cur.execute(statement)
    return dict(cur.fetchall())


def _records(cur, statement: str) -> list[dict]:
    """A query's rows, each as a dict keyed by column name."""
    cur.execute(statement)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class LagReader:
    """Records of the topic each consumer group has not processed yet (end offsets minus
    committed ones). A consumer per group, kept for all refreshes, asks for its group's committed
    offsets without joining the group; one more reads the end offsets.

    Not the admin client's list_consumer_group_offsets: librdkafka crashes the whole process
    (SIGSEGV) when that request is answered NOT_COORDINATOR, as a group's first request to a new
    broker can be (confluentinc/librdkafka#5040, still in confluent-kafka 2.16.1). A consumer of
    the group handles that answer: it finds the coordinator again and retries.
    """

    def __init__(self, bootstrap_servers: str, topic: str, timeout_seconds: float = 5) -> None:
        self._bootstrap_servers, self._topic, self._timeout = bootstrap_servers, topic, timeout_seconds
        self._probe = self._consumer("ticket-pipeline-dashboard")
        self._groups: dict[str, Consumer] = {}

    def _consumer(self, group: str) -> Consumer:
        # No subscribe and no assign: it never joins the group, never commits.
        return Consumer(
            {
                "bootstrap.servers": self._bootstrap_servers,
                "group.id": group,
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )

    def read(self, groups: list[str]) -> dict[str, int]:
        topic, timeout = self._topic, self._timeout
        partitions = [
            TopicPartition(topic, p)
            for p in self._probe.list_topics(topic, timeout=timeout).topics[topic].partitions
        ]
        ends = {tp.partition: self._probe.get_watermark_offsets(tp, timeout=timeout)[1] for tp in partitions}
        lag = {}
        for group in groups:
            if group not in self._groups:
                self._groups[group] = self._consumer(group)
            committed = self._groups[group].committed(partitions, timeout=timeout)
            done = {tp.partition: max(tp.offset, 0) for tp in committed}
            lag[group] = sum(max(end - done.get(p, 0), 0) for p, end in ends.items())
        return lag
