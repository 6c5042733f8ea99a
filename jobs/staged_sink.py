"""A streaming sink that writes from the executors and commits each micro-batch on the driver.

Built on PySpark's Python data source API (`DataSourceStreamArrowWriter`, Spark 4.1+); a job
writes with `writeStream.format(<its sink's name>)`, and no row ever reaches the driver.

    write   (executors)  each task COPYs its Arrow batches into the job's staging tables
                         (UNLOGGED), each row tagged with the batch id, a writer id of the
                         task and its row number, in a transaction of its own; it returns a
                         StagedPart: what it read and staged.
    commit  (driver)     one transaction: unless the query already committed this batch id
                         (a replay after a crash between our commit and Spark's checkpoint),
                         check that the staged counts match the parts, move the rows of those
                         writers to the tables (the job's SinkPlan), record the batch id in
                         sink_commits, empty the staging tables; then report the outcome to
                         the driver process (jobs.batch_outcomes).
    abort   (driver)     delete the batch's staged rows.

Rows that PostgreSQL refuses are isolated where it refuses them: a value the column type
refuses, by the task's COPY; a constraint of a target table, by the commit
(postgres_sink.write_isolating in both). Either way they become dead letters with their bytes
read back from Kafka, and the rest of the batch is stored.

A task that loses PostgreSQL waits until it answers again (DATABASE_RETRY_SECONDS) and then
fails, and Spark runs it again from Kafka (local masters allow 4 attempts per task, see
jobs.settings); the commit retries its own transaction the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.compute as pc
from psycopg2 import sql
from pyspark import TaskContext
from pyspark.sql.datasource import DataSource, DataSourceStreamArrowWriter, WriterCommitMessage
from pyspark.sql.types import StructType

from core.contract import TABLES, reason_label
from core.kafka import PASSWORD_ENV, KafkaConnection
from core.postgres import DatabaseUnavailable, connect, wait_for_database
from jobs.batch_outcomes import SAMPLE_ROWS, BatchOutcome, send_outcome
from jobs.dead_letters import REFUSED_POSITION, RecordReader, refused_letters, store_dead_letters
from jobs.metrics import LATENCY_BUCKETS
from jobs.postgres_sink import (
    BatchTransaction,
    Refused,
    TableRows,
    copy_rows,
    write_isolating,
)

__all__ = [
    "BATCH_ID_PROPERTY",
    "QUERY_ID_PROPERTY",
    "CommitContext",
    "SinkOptions",
    "SinkPlan",
    "StagedPart",
    "StagedRows",
    "StagedSink",
    "StagedWriter",
    "Stager",
    "StagingLost",
]

logger = logging.getLogger(__name__)

# Set by Spark's MicroBatchExecution on every task of a micro-batch.
BATCH_ID_PROPERTY = "streaming.sql.batchId"
QUERY_ID_PROPERTY = "sql.streaming.queryId"
_TAGS = ("batch_id", "writer", "row_number")
_TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError, DatabaseUnavailable)
_CLEAR_LOCK_TIMEOUT = "2s"
_COMMIT_WORK_MEM = "64MB"


class StagingLost(RuntimeError):
    """Staged rows of a batch are missing at commit (PostgreSQL restarted after a crash, which
    empties UNLOGGED tables): the batch fails, and Spark runs it again."""


class StagingInterrupted(RuntimeError):
    """A task lost PostgreSQL while it staged; it fails once PostgreSQL answers again, so that
    Spark runs it again from Kafka."""


@dataclass(frozen=True)
class SinkOptions:
    """The sink's settings, as the writeStream options carry them to executors and driver."""

    database_url: str
    topic: str
    bootstrap_servers: str
    retry_seconds: float
    statement_timeout_seconds: float
    outcomes_socket: str = ""
    # How the executors read a refused record back from Kafka; SASL's password comes from
    # their environment (KAFKA_SASL_PASSWORD), as PostgreSQL's does, never from an option.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_ssl_ca_file: str = ""
    console_rows: int = 0

    def kafka_connection(self) -> KafkaConnection:
        """The Kafka connection of the query, with the password of this process's environment."""
        return KafkaConnection(
            self.bootstrap_servers,
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            os.environ.get(PASSWORD_ENV, ""),
            self.kafka_ssl_ca_file,
        )

    def to_options(self) -> dict[str, str]:
        return {name: str(value) for name, value in asdict(self).items()}

    @classmethod
    def from_options(cls, options: dict[str, str]) -> SinkOptions:
        kinds = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, kind in kinds.items():
            # Spark hands data source options over with case-insensitive (lower-case) keys.
            raw = options.get(name, options.get(name.lower()))
            if raw is None:
                continue
            values[name] = float(raw) if kind == "float" else int(raw) if kind == "int" else raw
        return cls(**values)


@dataclass
class StagedPart(WriterCommitMessage):
    """What one task read and staged, for the commit."""

    query_id: str
    batch_id: int
    writer: str
    staged: dict[str, int] = field(default_factory=dict)
    read: int = 0
    valid_by_type: dict[str, int] = field(default_factory=dict)
    rejected_by_label: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    # Dead letters the task stored: records the contract rejects, rows a column type refuses.
    rejected_new: int = 0
    rejected_sample: list[dict] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


class StagedRows(TableRows):
    """The rows of one staging table that the tasks of one batch staged: all of them (the whole
    table: the commit removed every other row first, see _check_staged), or those from one
    (writer, row_number) key to another. Sliceable like an Arrow table, so that
    write_isolating can halve them.

    Reading the whole table, not a filtered part of it, lets PostgreSQL estimate the batch's
    size from the table's; filtered by batch and writer, it guessed a few rows, and joined
    the aggregation's CTEs by nested loops (28.7 s for a batch of 20,000 tickets).
    """

    def __init__(self, cur, table: str, num_rows: int, keys: list[tuple[str, int]] | None = None) -> None:
        super().__init__(table, num_rows if keys is None else len(keys))
        self._cur, self._keys = cur, keys

    def source(self) -> sql.Composable:
        if self._keys is None:
            return sql.Identifier(self.table)
        (first_writer, first_row), (last_writer, last_row) = self._keys[0], self._keys[-1]
        return sql.SQL(
            "(SELECT * FROM {} WHERE (writer, row_number) BETWEEN ({}, {}) AND ({}, {})) AS staged"
        ).format(
            sql.Identifier(self.table), *map(sql.Literal, (first_writer, first_row, last_writer, last_row))
        )

    def slice(self, start: int, length: int) -> StagedRows:
        keys = self._keys if self._keys is not None else self._load_keys()
        return StagedRows(self._cur, self.table, 0, keys[start : start + length])

    def take(self, indices: list[int], columns: list[str]) -> pa.Table:
        """The given rows (indices into these rows' key order) with `columns`, as Arrow."""
        keys = self._keys if self._keys is not None else self._load_keys()
        wanted = [keys[i] for i in indices]
        self._cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE (writer, row_number) IN ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, ("writer", "row_number", *columns))),
                sql.Identifier(self.table),
                sql.SQL(", ").join(sql.SQL("({}, {})").format(*map(sql.Literal, key)) for key in wanted),
            )
        )
        found = {(row[0], row[1]): row[2:] for row in self._cur.fetchall()}
        return pa.Table.from_pylist([dict(zip(columns, found[key], strict=True)) for key in wanted])

    def _load_keys(self) -> list[tuple[str, int]]:
        self._cur.execute(
            sql.SQL("SELECT writer, row_number FROM {} ORDER BY writer, row_number").format(
                sql.Identifier(self.table)
            )
        )
        self._keys = [tuple(row) for row in self._cur.fetchall()]
        return self._keys


class Stager:
    """What a task uses to stage rows: its cursor, its tags, its part and its Kafka reader."""

    def __init__(self, cur, part: StagedPart, options: SinkOptions, reader: RecordReader) -> None:
        self.cur, self.part, self.options, self.reader = cur, part, options, reader
        self.staged: Counter[str] = Counter()
        self._next_row: Counter[str] = Counter()

    def stage(self, table: str, rows: pa.Table) -> list[Refused]:
        """COPY `rows` into the staging `table`, tagged; return the rows PostgreSQL refused
        (isolated, each alone; all others are staged)."""
        if rows.num_rows == 0:
            return []
        _, refused = write_isolating(self.cur, rows, lambda cur, part: self._copy(cur, table, part))
        return refused

    def _copy(self, cur, table: str, rows: pa.Table) -> None:
        first = self._next_row[table]
        self._next_row[table] += rows.num_rows  # a refused part leaves a gap, never a repeat
        n = rows.num_rows
        tagged = rows.append_column("batch_id", pa.repeat(pa.scalar(self.part.batch_id, pa.int64()), n))
        tagged = tagged.append_column("writer", pa.repeat(pa.scalar(self.part.writer), n))
        tagged = tagged.append_column("row_number", pa.array(range(first, first + n), pa.int32()))
        copy_rows(cur, table, tagged)
        self.staged[table] += n


@dataclass
class CommitContext:
    """What the driver's commit of one batch works with."""

    cur: object
    batch_id: int
    parts: list[StagedPart]
    options: SinkOptions
    reader: RecordReader

    def rows(self, table: str) -> StagedRows:
        staged = sum(p.staged.get(table, 0) for p in self.parts)
        return StagedRows(self.cur, table, staged)

    def store_refused(self, rows: StagedRows, refused: list[Refused]) -> int:
        """Store the rows of `rows` that a commit's write refused as dead letters, with their
        bytes read back from Kafka; return how many are new."""
        if not refused:
            return 0
        positions = rows.take([r.index for r in refused], list(REFUSED_POSITION))
        renumbered = [Refused(i, r.reason) for i, r in enumerate(refused)]
        letters = refused_letters(self.options.topic, positions, renumbered, self.reader)
        return store_dead_letters(self.cur, letters)


class SinkPlan(ABC):
    """What one job stages of its rows (executors) and how its commit moves them (driver)."""

    job: str
    staged_tables: tuple[str, ...]
    # The staging table whose created_at the latency is measured on, at commit.
    latency_table: str

    @abstractmethod
    def stage(self, stager: Stager, batch: pa.Table) -> None:
        """Stage one Arrow batch of the job's projected rows; count refusals and dead letters
        in `stager.part`."""

    @abstractmethod
    def commit(self, context: CommitContext, outcome: BatchOutcome) -> None:
        """Move the batch's staged rows to the job's tables; fill in `outcome`."""


def _tally(part: StagedPart, batch: pa.Table) -> None:
    """Count a batch's records: read, valid by type, rejected by reason label."""
    part.read += batch.num_rows
    valid = pc.is_null(batch["reason"])
    for entry in pc.value_counts(batch.filter(valid)["type"]).to_pylist():
        part.valid_by_type[entry["values"]] = part.valid_by_type.get(entry["values"], 0) + entry["counts"]
    for entry in pc.value_counts(batch.filter(pc.invert(valid))["reason"]).to_pylist():
        label = reason_label(entry["values"])
        part.rejected_by_label[label] = part.rejected_by_label.get(label, 0) + entry["counts"]


# One connection (and one commit transaction) and one Kafka reader per Python worker process,
# kept across tasks and commits: Spark reuses its Python workers.
_CONNECTIONS: dict[tuple[str, str], psycopg2.extensions.connection] = {}
_TRANSACTIONS: dict[tuple[str, str], BatchTransaction] = {}
_READERS: dict[str, RecordReader] = {}


def _commit_transaction(options: SinkOptions, application_name: str) -> BatchTransaction:
    key = (options.database_url, application_name)
    if key not in _TRANSACTIONS:
        _TRANSACTIONS[key] = BatchTransaction(
            options.database_url, application_name, options.retry_seconds, options.statement_timeout_seconds
        )
    return _TRANSACTIONS[key]


def _reader(options: SinkOptions) -> RecordReader:
    connection = options.kafka_connection()
    if connection not in _READERS:
        _READERS[connection] = RecordReader(connection)
    return _READERS[connection]


def _connection(options: SinkOptions, application_name: str) -> psycopg2.extensions.connection:
    key = (options.database_url, application_name)
    conn = _CONNECTIONS.get(key)
    if conn is None or conn.closed:
        wait_for_database(
            options.database_url, application_name=application_name, timeout_seconds=options.retry_seconds
        )
        conn = _CONNECTIONS[key] = connect(
            options.database_url,
            application_name=application_name,
            statement_timeout_seconds=options.statement_timeout_seconds,
        )
    return conn


def _drop_connection(options: SinkOptions, application_name: str) -> None:
    conn = _CONNECTIONS.pop((options.database_url, application_name), None)
    if conn is not None and not conn.closed:
        with contextlib.suppress(psycopg2.Error):
            conn.close()


class StagedWriter(DataSourceStreamArrowWriter):
    """The writer of one query: `write` on the executors, `commit` and `abort` on the driver."""

    def __init__(self, plan: SinkPlan, options: SinkOptions) -> None:
        self.plan, self.options = plan, options

    def write(self, iterator: Iterator[pa.RecordBatch]) -> StagedPart:
        context = TaskContext.get()
        part = StagedPart(
            query_id=context.getLocalProperty(QUERY_ID_PROPERTY),
            batch_id=int(context.getLocalProperty(BATCH_ID_PROPERTY)),
            writer=f"{context.partitionId()}-{context.attemptNumber()}-{uuid.uuid4().hex[:12]}",
            started=time.time(),
        )
        name = f"{self.plan.job}-stage"
        conn = _connection(self.options, name)
        try:
            with conn.cursor() as cur:
                # Staged rows are UNLOGGED, and the driver's commit, synchronous, flushes the
                # WAL of every transaction before it: a task need not wait for its own flush.
                cur.execute("SET LOCAL synchronous_commit = off")
                stager = Stager(cur, part, self.options, _reader(self.options))
                for record_batch in iterator:
                    batch = pa.Table.from_batches([record_batch])
                    _tally(part, batch)
                    self.plan.stage(stager, batch)
            conn.commit()
        except _TRANSIENT as e:
            _drop_connection(self.options, name)
            wait_for_database(
                self.options.database_url, application_name=name, timeout_seconds=self.options.retry_seconds
            )
            raise StagingInterrupted(f"{self.plan.job}: PostgreSQL lost while staging: {e}") from e
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
        part.staged = dict(stager.staged)
        part.finished = time.time()
        return part

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        parts = [m for m in messages if isinstance(m, StagedPart)]
        started = time.monotonic()
        transaction = _commit_transaction(self.options, f"{self.plan.job}-commit")
        retries_before = transaction.retries
        outcome = transaction.run(lambda cur: self._commit(cur, batchId, parts))
        outcome.commit_seconds = time.monotonic() - started
        outcome.database_retries = transaction.retries - retries_before
        send_outcome(self.options.outcomes_socket, outcome)

    def _commit(self, cur, batch_id: int, parts: list[StagedPart]) -> BatchOutcome:
        outcome = BatchOutcome(job=self.plan.job, batch_id=batch_id)
        for part in parts:
            outcome.read += part.read
            outcome.refused += part.refused
            outcome.rejected_new += part.rejected_new
            outcome.rejected_sample += part.rejected_sample[: SAMPLE_ROWS - len(outcome.rejected_sample)]
            for kind, n in part.valid_by_type.items():
                outcome.valid_by_type[kind] = outcome.valid_by_type.get(kind, 0) + n
            for label, n in part.rejected_by_label.items():
                outcome.rejected_by_label[label] = outcome.rejected_by_label.get(label, 0) + n
        if parts:
            outcome.tasks_seconds = max(p.finished for p in parts) - min(p.started for p in parts)
        query_id = parts[0].query_id if parts else None
        outcome.rejected = sum(outcome.rejected_by_label.values())
        if query_id is not None and _last_committed(cur, query_id) >= batch_id:
            outcome.replayed = True
            _clear_staging(cur, self.plan.staged_tables, batch_id)
            return outcome
        context = CommitContext(cur, batch_id, parts, self.options, _reader(self.options))
        # The moves sort the batch (DISTINCT ON ticket_id): in memory, not on disk.
        cur.execute(f"SET LOCAL work_mem = '{_COMMIT_WORK_MEM}'")
        _check_staged(context, self.plan.staged_tables)
        self.plan.commit(context, outcome)
        outcome.latency_counts, outcome.latency_sum = _latency(context.rows(self.plan.latency_table))
        if query_id is not None:
            _record_commit(cur, query_id, self.plan.job, batch_id)
        _clear_staging(cur, self.plan.staged_tables, batch_id)
        return outcome

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        try:
            with (
                connect(
                    self.options.database_url,
                    application_name=f"{self.plan.job}-abort",
                    statement_timeout_seconds=self.options.statement_timeout_seconds,
                ) as conn,
                conn.cursor() as cur,
            ):
                for table in self.plan.staged_tables:
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE batch_id = %s").format(sql.Identifier(table)),
                        (batchId,),
                    )
            conn.close()
        except (psycopg2.Error, DatabaseUnavailable) as e:
            # The next commit empties the staging tables anyway.
            logger.warning("%s batch %d: staged rows not removed on abort: %s", self.plan.job, batchId, e)


def _last_committed(cur, query_id: str) -> int:
    """The last batch id the query committed (-1: none); locks its row until the commit."""
    cur.execute(
        sql.SQL("SELECT batch_id FROM {} WHERE query_id = %s FOR UPDATE").format(
            sql.Identifier(TABLES.sink_commits)
        ),
        (query_id,),
    )
    row = cur.fetchone()
    return -1 if row is None else row[0]


def _record_commit(cur, query_id: str, sink: str, batch_id: int) -> None:
    cur.execute(
        sql.SQL(
            "INSERT INTO {} (query_id, sink, batch_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (query_id) DO UPDATE SET batch_id = EXCLUDED.batch_id,"
            " committed_at = clock_timestamp()"
        ).format(sql.Identifier(TABLES.sink_commits)),
        (query_id, sink, batch_id),
    )


def _check_staged(context: CommitContext, tables: tuple[str, ...]) -> None:
    """Every row the parts staged is there, or the batch fails (StagingLost); then delete
    every other row (of a task attempt that failed, of an earlier batch that never committed),
    so that the tables hold exactly the batch."""
    for table in tables:
        expected = {p.writer: p.staged[table] for p in context.parts if p.staged.get(table)}
        context.cur.execute(
            sql.SQL("SELECT batch_id, writer, count(*) FROM {} GROUP BY batch_id, writer").format(
                sql.Identifier(table)
            )
        )
        found = {(batch, writer): n for batch, writer, n in context.cur.fetchall()}
        missing = {w: n - found.get((context.batch_id, w), 0) for w, n in expected.items()}
        missing = {w: n for w, n in missing.items() if n}
        if missing:
            raise StagingLost(
                f"batch {context.batch_id}: rows staged in {table} are missing at commit ({missing});"
                " PostgreSQL may have restarted after a crash, which empties staging tables"
            )
        if set(found) - {(context.batch_id, w) for w in expected}:
            context.cur.execute(
                sql.SQL("DELETE FROM {} WHERE NOT (batch_id = %s AND writer = ANY(%s))").format(
                    sql.Identifier(table)
                ),
                (context.batch_id, list(expected)),
            )


def _latency(rows: StagedRows) -> tuple[list[int], float]:
    """Counts per latency bucket (+Inf last) of now - created_at over `rows`, and their sum."""
    if rows.num_rows == 0:
        return [], 0.0
    lag = sql.SQL("extract(epoch FROM to_timestamp({}) - created_at)::float8").format(
        sql.Literal(time.time())
    )
    rows._cur.execute(
        sql.SQL("SELECT {}, count(*), coalesce(sum(lag), 0) FROM (SELECT {} AS lag FROM {}) s").format(
            sql.SQL(", ").join(
                sql.SQL("count(*) FILTER (WHERE lag <= {})").format(sql.Literal(bound))
                for bound in LATENCY_BUCKETS
            ),
            lag,
            rows.source(),
        )
    )
    *cumulative, total = rows._cur.fetchone()
    counts = [b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True)]
    return counts, float(total)


def _clear_staging(cur, tables: tuple[str, ...], batch_id: int) -> None:
    """Empty the staging tables (only one batch of a query is staged at a time). If another
    session holds a lock on them (a task of a dead driver still staging), delete only the rows
    of this batch and before."""
    cur.execute("SAVEPOINT clear_staging")
    cur.execute(f"SET LOCAL lock_timeout = '{_CLEAR_LOCK_TIMEOUT}'")
    try:
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
        cur.execute("RELEASE SAVEPOINT clear_staging")
    except psycopg2.errors.LockNotAvailable:
        cur.execute("ROLLBACK TO SAVEPOINT clear_staging")
        for table in tables:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE batch_id <= %s").format(sql.Identifier(table)), (batch_id,)
            )
    cur.execute("SET LOCAL lock_timeout = 0")


_SAMPLE_TEXT_CHARS = 200


def sample_rows(cur, rows: StagedRows, columns: list[str], limit: int) -> list[dict]:
    """Up to `limit` (at most SAMPLE_ROWS) of `rows`, for the driver's console lines (texts
    cut at 200 characters)."""
    limit = min(limit, SAMPLE_ROWS)
    if limit <= 0 or rows.num_rows == 0:
        return []
    cur.execute(
        sql.SQL("SELECT {} FROM {} LIMIT {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), rows.source(), sql.Literal(limit)
        )
    )
    return [
        {c: v[:_SAMPLE_TEXT_CHARS] if isinstance(v, str) else v for c, v in zip(columns, row, strict=True)}
        for row in cur.fetchall()
    ]


class StagedSink(DataSource):
    """Base of the jobs' sinks: a subclass names itself and gives its plan."""

    plan: type[SinkPlan]

    def schema(self) -> str:
        raise NotImplementedError("a sink only: it cannot be read")

    def streamWriter(self, schema: StructType, overwrite: bool) -> StagedWriter:
        return StagedWriter(self.plan(), SinkOptions.from_options(dict(self.options)))
