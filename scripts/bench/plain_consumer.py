"""Baseline: what a team would write instead of Spark. confluent-kafka + psycopg2, batched.

Same validation and enrichment (scripts.bench.ticket_rows: core.contract.decode_ticket,
team, lineage), and the very same idempotent writes as the jobs (jobs.postgres_sink: COPY
into a staging table, upsert keyed by ticket_id, counts per type from the counted copies),
both in one transaction per batch. Offsets are committed to Kafka after the database commit
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

from core.kafka import client_config
from jobs.counts_sink import COUNTED_COLUMNS
from jobs.postgres_sink import count_new_tickets, insert_tickets
from jobs.tickets_sink import STORED_COLUMNS
from scripts.bench.ticket_rows import stored_row

__all__ = ["main"]


def _batch_table(messages) -> pa.Table:
    """The valid tickets of a batch, with the columns `tickets` stores."""
    enriched_at = datetime.now(UTC)
    rows = [
        row
        for m in messages
        if (row := stored_row(m.value(), m.topic(), m.partition(), m.offset(), m.timestamp()[1], enriched_at))
        is not None
    ]
    return pa.table({name: [row[name] for row in rows] for name in STORED_COLUMNS})


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
