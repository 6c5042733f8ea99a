"""Baseline: what a team would write instead of Spark. confluent-kafka + psycopg2, batched.

Same validation (core.contract.decode_ticket), same enrichment (team, lineage), same
idempotent upsert (COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING), and
the per-type counts updated in the same transaction from the rows actually inserted.
Offsets are committed to Kafka after the database commit (at-least-once, idempotent).

    python -m scripts.bench.plain_consumer --bootstrap-servers H:P --topic T \\
        --database-url URL --expected N
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
import uuid
from datetime import UTC, datetime

import psycopg2
from confluent_kafka import Consumer

from core.contract import FIELD_NAMES, TABLES, decode_ticket, team_for

_COLUMNS = (
    *FIELD_NAMES,
    "team",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    "enriched_at",
)


def _batch_csv(messages) -> tuple[io.StringIO, int]:
    buffer, rows = io.StringIO(), 0
    writer = csv.writer(buffer)
    enriched_at = datetime.now(UTC).isoformat()
    for m in messages:
        ticket, _reason = decode_ticket(m.value())
        if ticket is None:
            continue  # the bench data is all valid; rejects would go to tickets_rejected
        kafka_ts = datetime.fromtimestamp(m.timestamp()[1] / 1000, UTC).isoformat()
        writer.writerow(
            [
                *(ticket[f] for f in FIELD_NAMES),
                team_for(ticket["type"]),
                m.topic(),
                m.partition(),
                m.offset(),
                kafka_ts,
                enriched_at,
            ]
        )
        rows += 1
    buffer.seek(0)
    return buffer, rows


def _write(cur, buffer: io.StringIO) -> None:
    columns = ", ".join(_COLUMNS)
    cur.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS stage (LIKE {TABLES.tickets} INCLUDING DEFAULTS)"
        " ON COMMIT DELETE ROWS"
    )
    cur.copy_expert(f"COPY stage ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
    cur.execute(
        f"WITH fresh AS (INSERT INTO {TABLES.tickets} ({columns})"
        f" SELECT DISTINCT ON (ticket_id) {columns} FROM stage"
        " ORDER BY ticket_id, kafka_partition, kafka_offset"
        f" ON CONFLICT (ticket_id) DO NOTHING RETURNING type)"
        f" INSERT INTO {TABLES.aggregation} (type, ticket_count, updated_at)"
        f" SELECT type, count(*), clock_timestamp() FROM fresh GROUP BY type"
        f" ON CONFLICT (type) DO UPDATE SET ticket_count = {TABLES.aggregation}.ticket_count"
        f" + EXCLUDED.ticket_count, updated_at = EXCLUDED.updated_at"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plain_consumer", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--expected", type=int, required=True, help="stop after this many records")
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args(argv)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap_servers,
            "group.id": f"bench-plain-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    conn = psycopg2.connect(args.database_url, application_name="plain-consumer")
    seen, started = 0, time.monotonic()
    while seen < args.expected:
        messages = [m for m in consumer.consume(args.batch_size, timeout=1) if not m.error()]
        if not messages:
            continue
        buffer, _rows = _batch_csv(messages)
        with conn.cursor() as cur:
            _write(cur, buffer)
        conn.commit()
        consumer.commit(asynchronous=False)
        seen += len(messages)
    consumer.close()
    conn.close()
    print(f"plain consumer: {seen} records in {time.monotonic() - started:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
