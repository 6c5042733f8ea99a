"""Dead letters: the records that a job cannot store, in `tickets_rejected` with a reason.

A dead letter keeps the first PREVIEW_BYTES of the record's key and value, with the size
and the sha-256 of each, so that no record, however large, makes a large row or batch.
Records that the contract rejects arrive with their reason and previews from Spark.
Rows that PostgreSQL refuses (postgres_sink.write_isolating) were valid by the contract:
their raw bytes are read back from Kafka at their position, which is rare and cheap.
"""

from __future__ import annotations

import hashlib
import logging
import time

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, TopicPartition

from core.contract import LINEAGE_NAMES, RAW_PART_TYPES, RAW_PARTS
from core.kafka import KafkaConnection, client_config
from jobs.postgres_sink import Refused, insert_rejected, write_isolating

__all__ = [
    "PREVIEW_BYTES",
    "REFUSED_POSITION",
    "REJECTED_COLUMNS",
    "DeadLetterError",
    "RecordReader",
    "raw_summary",
    "refused_letters",
    "store_dead_letters",
]

logger = logging.getLogger(__name__)

# How much of a record's key and of its value a dead letter keeps.
PREVIEW_BYTES = 4096
_RAW_COLUMNS = tuple(f"{part}_{what}" for part in RAW_PARTS for what in RAW_PART_TYPES)
REJECTED_COLUMNS = (*LINEAGE_NAMES, "reason", *_RAW_COLUMNS)
_SCHEMA = pa.schema(
    [
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_timestamp", pa.timestamp("us", tz="UTC")),
        ("reason", pa.string()),
        *[(c, pa.int32() if c.endswith("_bytes") else pa.string()) for c in _RAW_COLUMNS],
    ]
)
_READ_TIMEOUT_SECONDS = 15.0
# What refused_letters needs of each refused row, besides the topic.
REFUSED_POSITION = ("kafka_partition", "kafka_offset", "kafka_timestamp")


class DeadLetterError(RuntimeError):
    """A dead letter that PostgreSQL refuses even with only its position, reason and bytes."""


class RecordReader:
    """Reads single records of the topic back by position, without joining any group."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._connection = connection
        self._consumer: Consumer | None = None

    def read(self, topic: str, partition: int, offset: int) -> tuple[bytes | None, bytes | None]:
        """(key, value) of the record at that position; (None, None) if it is gone."""
        if self._consumer is None:
            self._consumer = Consumer(
                client_config(
                    self._connection,
                    {
                        "group.id": "ticket-pipeline-dead-letters",
                        "enable.auto.commit": False,
                        "enable.partition.eof": True,
                        "log_level": 0,
                    },
                )
            )
        self._consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + _READ_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            message = self._consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    break  # the end of the partition, and no record at that offset
                continue
            if message.offset() == offset:
                return message.key(), message.value()
            if message.offset() > offset:
                break
        logger.warning(
            "record %s/%d@%d not read back: its dead letter has no bytes", topic, partition, offset
        )
        return None, None

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def refused_letters(topic: str, rows: pa.Table, refused: list[Refused], reader: RecordReader) -> pa.Table:
    """The dead letters of rows that PostgreSQL refused: position, reason, raw bytes from Kafka.

    `rows` has kafka_partition, kafka_offset and kafka_timestamp (the written table)."""
    letters = []
    for index, reason in refused:
        row = rows.slice(index, 1).select(list(REFUSED_POSITION)).to_pylist()[0]
        key, value = reader.read(topic, row["kafka_partition"], row["kafka_offset"])
        letters.append(
            {
                "kafka_topic": topic,
                **row,
                "reason": reason,
                **raw_summary("raw_key", key),
                **raw_summary("raw_value", value),
            }
        )
    return pa.Table.from_pylist(letters, schema=_SCHEMA)


def raw_summary(part: str, raw: bytes | None) -> dict[str, object]:
    """A raw part's dead-letter columns: its preview in hex, its size, its sha-256."""
    if raw is None:
        return {f"{part}_hex": None, f"{part}_bytes": None, f"{part}_sha256": None}
    return {
        f"{part}_hex": raw[:PREVIEW_BYTES].hex(),
        f"{part}_bytes": len(raw),
        f"{part}_sha256": hashlib.sha256(raw).hexdigest(),
    }


def store_dead_letters(cur, letters: pa.Table) -> int:
    """Insert dead letters (idempotent by position); return how many are new.

    A letter that PostgreSQL refuses in turn (its Kafka timestamp out of range, say) is
    stored with its position, the refusal as reason and its bytes, with no timestamp."""
    parts, refused = write_isolating(cur, letters, insert_rejected)
    if not refused:
        return sum(parts)
    fallback = letters.take([r.index for r in refused]).to_pylist()
    for letter, (_, reason) in zip(fallback, refused, strict=True):
        letter.update(kafka_timestamp=None, reason=reason)
    table = pa.Table.from_pylist(fallback, schema=letters.schema)
    stored, still = write_isolating(cur, table, insert_rejected)
    if still:
        positions = [f"{r['kafka_topic']}/{r['kafka_partition']}@{r['kafka_offset']}" for r in fallback]
        raise DeadLetterError(
            f"PostgreSQL refuses the dead letters of {', '.join(positions)}: {still[0].reason}"
        )
    return sum(parts) + sum(stored)
