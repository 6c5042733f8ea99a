"""Baseline: quix-streams, the library a Python team would pick instead of Spark.

A quixstreams Application reads the topic as raw bytes, applies our validation and
enrichment (scripts.bench.ticket_rows: core.contract.decode_ticket, team, lineage) and
stores the valid tickets with quixstreams' own PostgreSQLSink into the existing `tickets`
table, as it stands:

- schema_auto_update=False: by default the sink runs, at every write, CREATE TABLE IF NOT
  EXISTS and an ALTER TABLE ... ADD COLUMN IF NOT EXISTS per column (DDL, which only the
  table's owner may run), with types guessed from the Python values (text for ticket_id
  and created_at, a timestamp without time zone), no key and no constraint;
- include_metadata=False: no `__key` and `timestamp` columns (lineage has its own);
- on_conflict_do_nothing=True: a replayed record is not stored twice, so at-least-once
  delivery leaves exact rows (of the copies of a ticket_id, the one stored first stays,
  where the jobs keep the first by WINNER_ORDER).

It does not count tickets per type. PostgreSQLSink only inserts, or with
upsert_on_primary_key sets each column to the new row's value: it cannot add a batch's
counts to tickets_aggregation. A count in quixstreams' own state would need group_by("type")
(every ticket produced again to a repartition topic) and, to count a ticket_id once, a
second state of the ticket_ids seen; this baseline has neither.

Otherwise the library's defaults: at-least-once, a checkpoint every 5 s, at which the sink
writes each partition's batch in one transaction (INSERT ... VALUES, 100 rows a statement)
before the offsets are committed.

    python -m scripts.bench.quix_consumer --bootstrap-servers H:P --topic T --database-url URL

It talks to the broker as every client of the pipeline does: TLS and SASL from the
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_CA_FILE settings of its environment
(core.kafka), plaintext by default.

It connects as the database's owner: the sink's setup runs CREATE SCHEMA IF NOT EXISTS,
which the jobs' writer role may not (it has no CREATE on the database).

Runs until SIGTERM or SIGINT (quixstreams stops cleanly, with a final checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from datetime import UTC, datetime

from psycopg2.extensions import parse_dsn
from quixstreams import Application, message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.sinks.community.postgresql import PostgreSQLSink

from core.contract import TABLES
from core.kafka import KafkaConnection
from core.settings import KafkaSettings, SettingError, load
from scripts.bench.ticket_rows import stored_row

__all__ = ["main", "tickets_sink"]


def tickets_sink(database_url: str) -> PostgreSQLSink:
    """quixstreams' PostgreSQLSink into the existing `tickets` table, idempotent on ticket_id;
    the password comes from libpq (PGPASSFILE, PGPASSWORD) unless the URL holds it."""
    dsn = parse_dsn(database_url)
    return PostgreSQLSink(
        host=dsn.get("host", "localhost"),
        port=int(dsn.get("port", 5432)),
        dbname=dsn["dbname"],
        user=dsn["user"],
        password=dsn.get("password"),
        table_name=TABLES.tickets,
        schema_auto_update=False,
        include_metadata=False,
        on_conflict_do_nothing=True,
        application_name="quix-consumer",
    )


def _enriched(value: bytes | None, _key, timestamp_ms: int, _headers) -> dict | None:
    """The row `tickets` stores for the current record, or None for an invalid one."""
    record = message_context()
    return stored_row(value, record.topic, record.partition, record.offset, timestamp_ms, datetime.now(UTC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quix_consumer", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--consumer-group", default=f"bench-quix-{uuid.uuid4().hex[:8]}", help="default: a new one"
    )
    args = parser.parse_args(argv)
    try:
        settings = load(KafkaSettings, ["--bootstrap-servers", args.bootstrap_servers, "--topic", args.topic])
        kafka = KafkaConnection.from_settings(settings)
    except SettingError as e:
        print(f"quix_consumer: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=ConnectionConfig.from_librdkafka_dict(kafka.librdkafka()),
            consumer_group=args.consumer_group,
            auto_offset_reset="earliest",
            # Stateless: nothing is kept there, but quixstreams would create ./state otherwise.
            state_dir=state_dir,
        )
        tickets = app.dataframe(app.topic(args.topic, value_deserializer="bytes"))
        tickets = tickets.apply(_enriched, metadata=True).filter(lambda row: row is not None)
        tickets.sink(tickets_sink(args.database_url))
        app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
