"""Baseline: the naive Spark approach, foreachBatch with Spark's JDBC writer in append mode.

The same Kafka source and validation as the enrichment job, but each micro-batch is
appended with `DataFrame.write.jdbc` (no staging, no idempotence: a replayed batch
would fail on the primary key or, without one, double the rows).

    python -m scripts.bench.naive_spark --bootstrap-servers H:P --topic T \\
        --jdbc-url jdbc:postgresql://H:P/DB --user U --checkpoint-dir DIR
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from pyspark.sql import functions as F

from core.contract import TABLES
from core.settings import load
from jobs.settings import JobSettings
from jobs.spark_session import build_session, kafka_stream
from jobs.tickets_sink import STORED_COLUMNS
from jobs.validation import classify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naive_spark", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--jdbc-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    args = parser.parse_args(argv)
    settings = load(
        JobSettings,
        ["--bootstrap-servers", args.bootstrap_servers, "--topic", args.topic, "--ui-port", "4049"],
        environ={k: v for k, v in os.environ.items() if k.startswith("SPARK_")},
    )
    spark = build_session("naive-jdbc", settings, 4049)

    properties = {
        "user": args.user,
        "password": os.environ["PGPASSWORD"],
        "driver": "org.postgresql.Driver",
        # Lets PostgreSQL cast the text ticket_id to uuid.
        "stringtype": "unspecified",
    }

    def append(kafka_df, _batch_id: int) -> None:
        rows = classify(kafka_df).where(F.col("reason").isNull())
        rows = rows.withColumn("enriched_at", F.current_timestamp()).select(*STORED_COLUMNS)
        rows.write.jdbc(args.jdbc_url, TABLES.tickets, mode="append", properties=properties)

    query = (
        # Batches as large as ours (MAX_OFFSETS_PER_TRIGGER).
        kafka_stream(spark, settings)
        .writeStream.foreachBatch(append)
        .option("checkpointLocation", args.checkpoint_dir)
        .trigger(processingTime="0 seconds")
        .start()
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set() and query.isActive:
        query.awaitTermination(1)
    query.stop()
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
