"""The producer's Prometheus metrics, read from its counters at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.components import PRODUCER
from producer.kafka_producer import TicketProducer

__all__ = ["DEFAULT_METRICS_PORT", "ProducerCollector", "producer_registry"]

DEFAULT_METRICS_PORT = PRODUCER.metrics_port
_PREFIX = "ticket_pipeline_producer"


class ProducerCollector(Collector):
    """Exposes a TicketProducer's counters; nothing is counted twice."""

    def __init__(self, producer: TicketProducer) -> None:
        self._producer = producer

    def collect(self) -> Iterator[Metric]:
        counters = self._producer.counters
        yield CounterMetricFamily(
            f"{_PREFIX}_tickets_sent", "Tickets handed to the Kafka client", value=counters.sent
        )
        yield CounterMetricFamily(
            f"{_PREFIX}_tickets_acknowledged",
            "Tickets the broker acknowledged (acks=all)",
            value=counters.acknowledged,
        )
        errors = CounterMetricFamily(
            f"{_PREFIX}_delivery_errors",
            "Tickets whose delivery failed, by librdkafka error name",
            labels=["error"],
        )
        for name, count in sorted(counters.errors.items()):
            errors.add_metric([name], count)
        yield errors
        yield CounterMetricFamily(
            f"{_PREFIX}_client_restarts",
            "Kafka clients replaced after a delivery stall (PRODUCER_STALL_TIMEOUT_SECONDS)",
            value=counters.client_restarts,
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_tickets_queued",
            "Tickets waiting in the Kafka client for an acknowledgement",
            value=self._producer.queued(),
        )
        yield GaugeMetricFamily(
            f"{_PREFIX}_send_rate_tickets_per_second",
            "Tickets sent per second over the last progress interval",
            value=counters.rate,
        )


def producer_registry(producer: TicketProducer) -> CollectorRegistry:
    """A registry holding only the producer's metrics."""
    registry = CollectorRegistry()
    registry.register(ProducerCollector(producer))
    return registry
