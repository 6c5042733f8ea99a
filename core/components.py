"""The pipeline's components: each one's name, ports and Kafka consumer group, in one place.

The programs take their defaults from here, `make run` its banner, and the chart's values
are checked against it (tests/k8s): a port is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGGREGATION",
    "BROKER",
    "COMPONENTS",
    "CONSOLE",
    "DASHBOARD",
    "DATABASE",
    "ENRICHMENT",
    "PRODUCER",
    "SPARK_JOBS",
    "Component",
]


@dataclass(frozen=True)
class Component:
    """A part of the pipeline: `port` is the one it serves its users on (a Spark UI, a web
    page, the Kafka or PostgreSQL protocol), `metrics_port` its Prometheus endpoint, and
    `consumer_group` the Kafka group it reads as or mirrors its offsets to."""

    name: str
    port: int | None = None
    metrics_port: int | None = None
    consumer_group: str | None = None

    @property
    def local_url(self) -> str:
        """Where a browser on this machine reaches its port (`make run`, a port-forward)."""
        return f"http://127.0.0.1:{self.port}"


BROKER = Component("kafka", port=9092)
DATABASE = Component("postgresql", port=5432)
CONSOLE = Component("console", port=8080)
PRODUCER = Component("producer", metrics_port=9400)
ENRICHMENT = Component(
    "enrichment", port=4040, metrics_port=9401, consumer_group="ticket-pipeline-enrichment"
)
AGGREGATION = Component(
    "aggregation", port=4041, metrics_port=9402, consumer_group="ticket-pipeline-aggregation"
)
DASHBOARD = Component("dashboard", port=8050, consumer_group="ticket-pipeline-dashboard")

SPARK_JOBS = (ENRICHMENT, AGGREGATION)
COMPONENTS = (BROKER, DATABASE, CONSOLE, PRODUCER, ENRICHMENT, AGGREGATION, DASHBOARD)
