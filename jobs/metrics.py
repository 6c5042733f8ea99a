"""A Spark job's Prometheus metrics: batches, records, durations, latency, lag.

Each job has its own registry, served by core.metrics on its metrics port. Counts are
added once per micro-batch from the collected Arrow batch, never once per record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from core.contract import reason_label, team_for

__all__ = ["BulkHistogram", "JobMetrics"]

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)


class BulkHistogram(Collector):
    """A histogram fed a whole array of observations at a time (one call per batch)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], labels: dict[str, str]):
        self._name, self._documentation = name, documentation
        self._bounds = np.asarray(buckets, dtype=float)
        self._labels = labels
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        # Bucket i holds bounds[i-1] < v <= bounds[i]: Prometheus' "le".
        counts = np.bincount(np.searchsorted(self._bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative, total = np.cumsum(self._counts), self._sum
        family = HistogramMetricFamily(self._name, self._documentation, labels=list(self._labels))
        buckets = [
            (floatToGoString(bound), int(count))
            for bound, count in zip(self._bounds, cumulative, strict=False)
        ]
        family.add_metric(list(self._labels.values()), [*buckets, ("+Inf", int(cumulative[-1]))], total)
        yield family


class JobMetrics:
    """The metrics of one job, labelled job_name=<job>."""

    def __init__(self, job: str) -> None:
        self.job = job
        self.registry = registry = CollectorRegistry()
        label = ["job_name"]
        self._batches = Counter(
            "ticket_pipeline_batches", "Micro-batches written", label, registry=registry
        ).labels(job)
        self._read = Counter(
            "ticket_pipeline_records_read", "Kafka records read", label, registry=registry
        ).labels(job)
        self._valid = Counter(
            "ticket_pipeline_tickets_valid",
            "Valid tickets read, by type and team (replays and resent copies included)",
            [*label, "type", "team"],
            registry=registry,
        )
        self._rejected = Counter(
            "ticket_pipeline_records_rejected",
            "Invalid records, by reason (without its free-form detail)",
            [*label, "reason"],
            registry=registry,
        )
        self._stored = Counter(
            "ticket_pipeline_tickets_stored",
            "Valid tickets written, by outcome: new, or already stored (a replay or a copy)",
            [*label, "outcome"],
            registry=registry,
        )
        self._refused = Counter(
            "ticket_pipeline_records_refused",
            "Valid tickets that PostgreSQL refused to store, written to tickets_rejected instead",
            label,
            registry=registry,
        ).labels(job)
        self._duration = Histogram(
            "ticket_pipeline_batch_duration_seconds",
            "Time of a micro-batch, by part: spark (read, validate, collect), postgres (the transaction)",
            [*label, "part"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._retries = Counter(
            "ticket_pipeline_database_retries",
            "Attempts of a micro-batch's transaction that PostgreSQL did not answer, retried",
            label,
            registry=registry,
        ).labels(job)
        self._phases = Counter(
            "ticket_pipeline_batch_phase_seconds",
            "Spark's time in each phase of the micro-batches (durationMs: addBatch, walCommit,"
            " queryPlanning...), summed",
            [*label, "phase"],
            registry=registry,
        )
        self._latency = BulkHistogram(
            "ticket_pipeline_latency_seconds",
            "End to end: when the valid tickets of a batch were committed minus their created_at",
            LATENCY_BUCKETS,
            {"job_name": job},
        )
        registry.register(self._latency)
        self._lag = Gauge(
            "ticket_pipeline_consumer_lag_records",
            "Records of the topic the job has not processed yet, by partition",
            [*label, "partition"],
            registry=registry,
        )
        self._attempts = Gauge(
            "ticket_pipeline_batch_attempts",
            "Starts of the job on a micro-batch that an earlier start did not finish (0 once a"
            " batch is committed)",
            label,
            registry=registry,
        ).labels(job)
        self._last_batch = Gauge(
            "ticket_pipeline_last_batch_timestamp_seconds",
            "When the job last committed a micro-batch (Unix time)",
            label,
            registry=registry,
        ).labels(job)
        self._last_batch.set(time.time())  # the start counts, so a silent job shows its age

    def batch_read(self, verdicts: pa.Table) -> None:
        """Records of a collected batch: read, valid by type, rejected by reason."""
        self._read.inc(verdicts.num_rows)
        rejected = pc.is_valid(verdicts["reason"])
        for entry in pc.value_counts(verdicts.filter(rejected)["reason"]).to_pylist():
            self._rejected.labels(self.job, reason_label(entry["values"])).inc(entry["counts"])
        for entry in pc.value_counts(verdicts.filter(pc.invert(rejected))["type"]).to_pylist():
            kind = entry["values"]
            self._valid.labels(self.job, kind, team_for(kind)).inc(entry["counts"])

    def batch_attempts(self, attempts: int) -> None:
        """How many times the job has started on the batch it resumes (jobs.replay_watch)."""
        self._attempts.set(attempts)

    def batch_committed(
        self,
        *,
        new: int,
        already_stored: int,
        refused: int = 0,
        created_at: pa.ChunkedArray,
        spark_seconds: float,
        postgres_seconds: float,
    ) -> None:
        """A committed batch: outcomes, latency of its tickets, durations, time of commit."""
        now = time.time()
        self._batches.inc()
        self._stored.labels(self.job, "new").inc(new)
        self._stored.labels(self.job, "already_stored").inc(already_stored)
        self._refused.inc(refused)
        created = (
            pc.cast(created_at, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        )
        self._latency.observe_many(now - created / 1e6)
        self._duration.labels(self.job, "spark").observe(spark_seconds)
        self._duration.labels(self.job, "postgres").observe(postgres_seconds)
        self._last_batch.set(now)
        self._attempts.set(0)

    def database_retried(self) -> None:
        """A batch's transaction is retried after an outage (jobs.postgres_sink)."""
        self._retries.inc()

    def batch_phases(self, duration_ms: dict[str, int]) -> None:
        """One micro-batch's phases, from its progress (Spark's durationMs)."""
        for phase, ms in duration_ms.items():
            self._phases.labels(self.job, phase).inc(ms / 1000)

    def lag(self, source_progress: dict) -> None:
        """Lag per partition from a Kafka source's progress: latestOffset - endOffset."""
        latest, end = source_progress.get("latestOffset"), source_progress.get("endOffset")
        if not isinstance(latest, dict) or not isinstance(end, dict):
            return
        for topic, partitions in latest.items():
            done = end.get(topic, {})
            for partition, offset in partitions.items():
                behind = max(int(offset) - int(done.get(partition, 0)), 0)
                self._lag.labels(self.job, partition).set(behind)
