"""Both jobs' Prometheus metrics after a real run: each figure equals what PostgreSQL holds."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from core.contract import TYPE_TEAMS, reason_label, reject_reason
from core.metrics import serve_metrics
from core.scrape import scrape, total, value
from jobs import aggregation, enrichment
from jobs.streaming import start_query
from producer.generator import TicketGenerator, encode
from scripts.embedded.ports import free_port
from tests.jobs.test_pipeline import fetch, job_settings, produce
from tests.jobs.test_validation import CORPUS

pytestmark = pytest.mark.integration


def run_with_metrics(spark, module, kafka, topic, database_url, checkpoints) -> dict:
    """Run one job until the topic is drained; scrape its metrics over HTTP before it stops."""
    settings = job_settings(module, kafka, topic, database_url, checkpoints)
    running = start_query(spark, module.SPEC, settings)
    try:
        running.query.processAllAvailable()
        url = serve_metrics(running.metrics.registry, free_port(), module.SPEC.name, "127.0.0.1")
        # Lag comes from progress events, which reach the listener a moment after the batch.
        deadline = time.monotonic() + 30
        samples = scrape(url)
        while total(samples, "ticket_pipeline_consumer_lag_records") and time.monotonic() < deadline:
            time.sleep(0.2)
            samples = scrape(url)
        return samples
    finally:
        running.stop()


def test_each_metric_of_both_jobs_matches_the_tables(
    spark, kafka_connection, topic, database_url, writer_url, tmp_path
):
    """Records read, valid by type and team, rejected by reason, new versus already stored,
    batches, latency and lag, as scraped from each job's endpoint, agree with PostgreSQL."""
    # Latencies count from created_at, so the bound on them starts before the tickets exist.
    started = time.time()
    generator = TicketGenerator(clients=40, seed=12)
    tickets = [generator.ticket() for _ in range(300)]
    resent = tickets[:20]
    records = [(t["client_id"].encode(), encode(t)) for t in [*tickets, *resent]]
    records += [(b"bad", v) for v in CORPUS]
    produce(kafka_connection, topic, records)

    scraped = {
        module.SPEC.name: run_with_metrics(spark, module, kafka_connection, topic, writer_url, tmp_path)
        for module in (enrichment, aggregation)
    }
    elapsed = time.time() - started

    stored = fetch(database_url, "SELECT count(*) FROM tickets")[0][0]
    counted = fetch(database_url, "SELECT sum(ticket_count) FROM tickets_aggregation")[0][0]
    by_type = Counter(t["type"] for t in [*tickets, *resent])
    reasons = Counter(reason_label(reject_reason(v)) for v in CORPUS)
    assert stored == counted == len(tickets)
    for job, samples in scraped.items():
        assert value(samples, "ticket_pipeline_records_read_total", job_name=job) == len(records)
        for kind, count in by_type.items():
            labels = {"job_name": job, "type": kind, "team": TYPE_TEAMS[kind]}
            assert value(samples, "ticket_pipeline_tickets_valid_total", **labels) == count
        for reason, count in reasons.items():
            assert (
                value(samples, "ticket_pipeline_records_rejected_total", job_name=job, reason=reason) == count
            )
        assert total(samples, "ticket_pipeline_records_rejected_total", job_name=job) == len(CORPUS)
        assert value(samples, "ticket_pipeline_tickets_stored_total", job_name=job, outcome="new") == stored
        assert value(
            samples, "ticket_pipeline_tickets_stored_total", job_name=job, outcome="already_stored"
        ) == len(resent)
        batches = value(samples, "ticket_pipeline_batches_total", job_name=job)
        assert batches >= len(records) / 150
        for part in ("tasks", "commit"):
            assert (
                value(samples, "ticket_pipeline_batch_duration_seconds_count", job_name=job, part=part)
                == batches
            )
        # Spark's phases of those batches: each took some time, the batch itself the most, and
        # none more than the test.
        addbatch = value(samples, "ticket_pipeline_batch_phase_seconds_total", job_name=job, phase="addBatch")
        phases = total(samples, "ticket_pipeline_batch_phase_seconds_total", job_name=job)
        assert 0 < addbatch <= phases < elapsed * 2  # triggerExecution spans the others
        # Every valid ticket read has a latency, none longer than the test itself.
        latency = {"job_name": job}
        assert value(samples, "ticket_pipeline_latency_seconds_count", **latency) == len(tickets) + len(
            resent
        )
        assert value(samples, "ticket_pipeline_latency_seconds_bucket", le="+Inf", **latency) == len(
            tickets
        ) + len(resent)
        assert (
            0
            < value(samples, "ticket_pipeline_latency_seconds_sum", **latency)
            < elapsed * (len(tickets) + len(resent))
        )
        partitions = {dict(series)["partition"] for name, series in samples if name.endswith("_lag_records")}
        assert partitions == {"0", "1", "2"}
        assert total(samples, "ticket_pipeline_consumer_lag_records", job_name=job) == 0
        assert (
            started
            <= value(samples, "ticket_pipeline_last_batch_timestamp_seconds", job_name=job)
            <= time.time()
        )
