"""Baseline: what a team would write instead of Spark. confluent-kafka + psycopg2, batched.

Same validation (core.contract.decode_ticket), same enrichment (team, lineage), and the
very same idempotent writes as the jobs (jobs.postgres_sink: COPY into a staging table,
upsert keyed by ticket_id, counts per type from the counted copies), both in one
transaction per batch. Offsets are committed to Kafka after the database commit
(at-least-once, idempotent).

    python -m scripts.bench.plain_consumer --bootstrap-servers H:P --topic T \\
        --database-url URL --expected N
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

import psycopg2
import pyarrow as pa
from confluent_kafka import Consumer

from core.contract import FIELD_NAMES, decode_ticket, team_for
from core.kafka import client_config
from jobs.aggregation import COUNTED_COLUMNS
from jobs.enrichment import STORED_COLUMNS
from jobs.postgres_sink import count_new_tickets, insert_tickets


def _batch_table(messages) -> pa.Table:
    """The valid tickets of a batch, with the columns `tickets` stores."""
    columns: dict[str, list] = {name: [] for name in STORED_COLUMNS}
    enriched_at = datetime.now(UTC)
    for m in messages:
        ticket, _reason = decode_ticket(m.value())
        if ticket is None:
            continue  # the bench data is all valid; rejects would go to tickets_rejected
        for name in FIELD_NAMES:
            columns[name].append(ticket[name])
        columns["team"].append(team_for(ticket["type"]))
        columns["kafka_topic"].append(m.topic())
        columns["kafka_partition"].append(m.partition())
        columns["kafka_offset"].append(m.offset())
        columns["kafka_timestamp"].append(datetime.fromtimestamp(m.timestamp()[1] / 1000, UTC))
        columns["enriched_at"].append(enriched_at)
    return pa.table(columns)


def _write(cur, tickets: pa.Table) -> None:
    insert_tickets(cur, tickets)
    count_new_tickets(cur, tickets.select(list(COUNTED_COLUMNS)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plain_consumer", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--expected", type=int, required=True, help="stop after this many records")
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args(argv)
    consumer = Consumer(
        client_config(
            args.bootstrap_servers,
            {
                "group.id": f"bench-plain-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            },
        )
    )
    consumer.subscribe([args.topic])
    conn = psycopg2.connect(args.database_url, application_name="plain-consumer")
    seen, started = 0, time.monotonic()
    while seen < args.expected:
        messages = [m for m in consumer.consume(args.batch_size, timeout=1) if not m.error()]
        if not messages:
            continue
        with conn.cursor() as cur:
            _write(cur, _batch_table(messages))
        conn.commit()
        consumer.commit(asynchronous=False)
        seen += len(messages)
    consumer.close()
    conn.close()
    print(f"plain consumer: {seen} records in {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
