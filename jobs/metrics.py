"""A Spark job's Prometheus metrics: batches, records, durations, latency, lag.

Each job has its own registry, served by core.metrics on its metrics port. Counts are
added once per micro-batch from the outcome its sink's commit reports (jobs.batch_outcomes),
never once per record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from core.contract import team_for
from jobs.batch_outcomes import BatchOutcome

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

    def add_counts(self, counts: Sequence[int], total: float) -> None:
        """Observations already counted per bucket (+Inf last), and their sum."""
        if not counts:
            return
        with self._lock:
            self._counts += np.asarray(counts, dtype=np.int64)
            self._sum += total

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
            "Time of a micro-batch, by part: tasks (the executors read, validate and stage, first"
            " start to last end), commit (the driver's transaction)",
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

    def batch_attempts(self, attempts: int) -> None:
        """How many times the job has started on the batch it resumes (jobs.replay_watch)."""
        self._attempts.set(attempts)

    def batch_committed(self, outcome: BatchOutcome) -> None:
        """A committed batch: its records, outcomes, latency, durations, time of commit."""
        self._read.inc(outcome.read)
        for label, n in outcome.rejected_by_label.items():
            self._rejected.labels(self.job, label).inc(n)
        for kind, n in outcome.valid_by_type.items():
            self._valid.labels(self.job, kind, team_for(kind)).inc(n)
        self._batches.inc()
        self._stored.labels(self.job, "new").inc(outcome.new)
        self._stored.labels(self.job, "already_stored").inc(outcome.already_stored)
        self._refused.inc(outcome.refused)
        self._retries.inc(outcome.database_retries)
        self._latency.add_counts(outcome.latency_counts, outcome.latency_sum)
        self._duration.labels(self.job, "tasks").observe(outcome.tasks_seconds)
        self._duration.labels(self.job, "commit").observe(outcome.commit_seconds)
        self._last_batch.set(time.time())
        self._attempts.set(0)

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
