"""Runs one streaming job: checks its settings, starts the query, stops it cleanly.

Both jobs share this driver loop; each supplies its projection of the raw records, its sink
(jobs.staged_sink: written from the executors, committed per micro-batch) and what it prints
of each committed batch. A job may run a side query beside its own, on the same projection,
its own checkpoint and the same session (the enrichment's Delta table): the job stops when
either query does.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from core.components import Component
from core.contract import TABLES
from core.kafka import BrokerUnavailable, KafkaConnection, wait_for_broker
from core.logs import configure_logging
from core.metrics import metrics_port, serve_metrics
from core.postgres import DatabaseUnavailable, settings_connection
from core.settings import LOCAL_DIR, SettingError, load, mask_url
from jobs.batch_outcomes import BatchOutcome, OutcomeChannel
from jobs.metrics import JobMetrics
from jobs.offsets import OffsetCommitter
from jobs.progress import ProgressLogger
from jobs.replay_watch import BatchAttempt, note_start
from jobs.settings import JobSettings
from jobs.spark_session import build_session, kafka_stream
from jobs.staged_sink import SinkOptions, StagedSink

__all__ = [
    "JobSpec",
    "RunningQuery",
    "SideQuery",
    "check_dependencies",
    "run_job",
    "run_main",
    "start_query",
]

logger = logging.getLogger(__name__)

Reporter = Callable[[BatchOutcome], None]


class SideQuery(Protocol):
    """A second query of a job, on the job's projected rows, with a checkpoint of its own."""

    checkpoint_dir: str

    def start(self, stream: DataFrame) -> StreamingQuery: ...


class JobSpec:
    """What distinguishes one job: its name, default UI and metrics ports, the projection of
    the raw records, its sink, what its driver does with each committed batch's outcome
    besides the metrics (print it, and for the enrichment prune old dead letters), and its
    side query, if its settings ask for one (given them and the job's checkpoint folder; it
    checks its own settings when built, before any query starts).
    """

    def __init__(
        self,
        component: Component,
        projection: Callable[[DataFrame], DataFrame],
        sink: type[StagedSink],
        reporter: Callable[[JobSettings], Reporter],
        side_query: Callable[[JobSettings, str], SideQuery | None] | None = None,
    ):
        self.component = component
        self.name = component.name
        self.projection = projection
        self.sink = sink
        self.reporter = reporter
        self.side_query = side_query

    def stream(self, spark: SparkSession, settings: JobSettings) -> DataFrame:
        """The job's projected rows of the tickets topic, as its query writes them.

        The projection is part of the streaming query, so Spark plans it once per micro-batch
        (queryPlanning). Projected inside a foreachBatch function, each micro-batch analysed
        and planned it twice, which took a third of a small batch's time.
        """
        return self.projection(kafka_stream(spark, settings))

    def checkpoint_dir(self, settings: JobSettings) -> str:
        return settings.checkpoint_dir or str(LOCAL_DIR / "run" / "checkpoints" / self.name)

    def ui_port(self, settings: JobSettings) -> int:
        return settings.ui_port or self.component.port

    def metrics_port(self, settings: JobSettings) -> int | None:
        return metrics_port(settings.metrics_port, self.component.metrics_port)

    def consumer_group(self, settings: JobSettings) -> str:
        return settings.consumer_group or self.component.consumer_group


def configure_job_logging() -> None:
    """The pipeline's logs on stderr, without py4j's chatter. py4j also logs every exception
    that a batch function raises, which reaches the JVM and ends the query: run_job reports
    that failure, once."""
    configure_logging()
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("py4j.clientserver").setLevel(logging.CRITICAL)


def check_dependencies(settings: JobSettings, connect_timeout_seconds: float = 20) -> None:
    """Fail fast, naming the setting, when Kafka or PostgreSQL is unreachable or unready."""
    try:
        wait_for_broker(KafkaConnection.from_settings(settings), connect_timeout_seconds)
    except BrokerUnavailable as e:
        raise SettingError(str(e)) from e
    try:
        with (
            settings_connection(settings, application_name="preflight") as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT to_regclass(%s)", (TABLES.tickets,))
            if cur.fetchone()[0] is None:
                raise SettingError(
                    f"table {TABLES.tickets} missing in {mask_url(settings.database_url)}:"
                    " apply the schema with `python -m core.migrate`"
                )
    except DatabaseUnavailable as e:
        raise SettingError(str(e)) from e


class RunningQuery:
    """A started query with its progress listener, offset committer and metrics, and its side
    query if the job has one."""

    def __init__(
        self,
        spark: SparkSession,
        query: StreamingQuery,
        listener: ProgressLogger,
        committer,
        metrics: JobMetrics,
        outcomes: OutcomeChannel,
        side: StreamingQuery | None = None,
    ):
        self.spark = spark
        self.query = query
        self.listener = listener
        self.committer = committer
        self.metrics = metrics
        self.outcomes = outcomes
        self.side = side

    @property
    def queries(self) -> list[StreamingQuery]:
        return [self.query, *([self.side] if self.side else [])]

    def all_active(self) -> bool:
        return all(query.isActive for query in self.queries)

    def exception(self) -> StreamingQueryException | None:
        """The failure of the first query that failed, if any."""
        return next((e for e in (query.exception() for query in self.queries) if e), None)

    def stop(self, timeout_seconds: float = 30) -> None:
        """Stop between two micro-batches, so a clean stop never interrupts a write."""
        deadline = time.monotonic() + timeout_seconds
        for query in self.queries:
            while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
                time.sleep(0.1)
            query.stop()
        self.spark.streams.removeListener(self.listener)
        self.outcomes.close()
        if self.committer:
            self.committer.close()


def start_query(
    spark: SparkSession, spec: JobSpec, settings: JobSettings, side: SideQuery | None = None
) -> RunningQuery:
    """Start the job's query on the tickets topic, with progress lines, offset commits and
    metrics (served by run_job), then its side query if it has one (`side`, else built here)."""
    side = side or _side_query(spec, settings)
    committer = OffsetCommitter(KafkaConnection.from_settings(settings), spec.consumer_group(settings))
    metrics = JobMetrics(spec.name)
    listener = ProgressLogger(spec.name, settings.progress_interval_seconds, committer, metrics)
    spark.streams.addListener(listener)
    trigger = f"{settings.trigger_interval_seconds:g} seconds"
    report = spec.reporter(settings)

    def handle(outcome: BatchOutcome) -> None:
        metrics.batch_committed(outcome)
        report(outcome)

    outcomes = OutcomeChannel(handle)
    logger.info("%s: at most %d records per micro-batch", spec.name, settings.max_offsets_per_trigger)
    _report_replay(spec.name, note_start(spec.checkpoint_dir(settings)), metrics)
    spark.dataSource.register(spec.sink)
    options = SinkOptions(
        database_url=settings.database_url,
        topic=settings.topic,
        bootstrap_servers=settings.bootstrap_servers,
        kafka_security_protocol=settings.kafka_security_protocol,
        kafka_sasl_mechanism=settings.kafka_sasl_mechanism,
        kafka_sasl_username=settings.kafka_sasl_username,
        kafka_ssl_ca_file=settings.kafka_ssl_ca_file,
        retry_seconds=settings.db_retry_seconds,
        statement_timeout_seconds=settings.statement_timeout_seconds,
        outcomes_socket=outcomes.path,
        console_rows=getattr(settings, "console_rows", 0),
    )
    try:
        query = (
            spec.stream(spark, settings)
            .writeStream.queryName(spec.name)
            .format(spec.sink.name())
            .options(**options.to_options())
            .option("checkpointLocation", spec.checkpoint_dir(settings))
            .trigger(processingTime=trigger)
            .start()
        )
    except BaseException:
        outcomes.close()
        raise
    listener.query_id = str(query.id)
    running = RunningQuery(spark, query, listener, committer, metrics, outcomes)
    if side is not None:
        try:
            running.side = side.start(spec.stream(spark, settings))
        except BaseException:
            running.stop()
            raise
        logger.info("%s: side query %s, checkpoint %s", spec.name, running.side.name, side.checkpoint_dir)
    return running


def _side_query(spec: JobSpec, settings: JobSettings) -> SideQuery | None:
    return spec.side_query(settings, spec.checkpoint_dir(settings)) if spec.side_query else None


def _report_replay(job: str, attempt: BatchAttempt | None, metrics: JobMetrics) -> None:
    """Say which unfinished batch a start resumes, loudly once the job seems stuck on it."""
    metrics.batch_attempts(attempt.attempts if attempt else 0)
    if attempt is None:
        return
    if attempt.stuck:
        logger.error(
            "%s: started %d times on %s without getting past it; the log of the previous start says why",
            job,
            attempt.attempts,
            attempt.describe(),
        )
    else:
        logger.info("%s: resuming %s, start %d on it", job, attempt.describe(), attempt.attempts)


def run_job(spec: JobSpec, settings: JobSettings) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or a query failure (exit 1)."""
    check_dependencies(settings)
    # The side query opens its storage here: a wrong setting stops the job before Spark starts.
    side = _side_query(spec, settings)
    spark = build_session(spec.name, settings, spec.ui_port(settings))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    running = start_query(spark, spec, settings, side)
    query = running.query
    metrics_url = serve_metrics(
        running.metrics.registry, spec.metrics_port(settings), spec.name, settings.bind_host
    )
    logger.info(
        "%s: reading %s from %s, writing %s, checkpoint %s, offsets mirrored to group %s,"
        " Spark UI %s, metrics %s",
        spec.name,
        settings.topic,
        settings.bootstrap_servers,
        mask_url(settings.database_url),
        spec.checkpoint_dir(settings),
        spec.consumer_group(settings),
        spark.sparkContext.uiWebUrl,
        metrics_url or "off",
    )
    failure: Exception | None = None
    try:
        while not stop.is_set() and running.all_active():
            query.awaitTermination(1)
    except Exception as e:  # the query's failure (reported below, once) or the JVM's loss
        failure = e
    finally:
        if query.isActive:
            logger.info("%s: stopping after the current micro-batch", spec.name)
        running.stop()
        error = running.exception() or failure
        spark.stop()
    if error is not None:
        logger.error("%s failed: %s", spec.name, error)
        return 1
    return 0


def run_main(spec: JobSpec, settings_class: type[JobSettings], argv: list[str] | None = None) -> int:
    """A job's command line: load its settings, run it; exit 2 on a wrong setting."""
    configure_job_logging()
    try:
        return run_job(spec, load(settings_class, argv, prog=spec.name))
    except SettingError as e:
        logger.error("%s", e)
        return 2
