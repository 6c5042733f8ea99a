"""Settings of the ticket producer and of its topic Job (`python -m producer.topic`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import KafkaSettings, MetricsSettings, ProgressSettings, at_least, setting

__all__ = ["ProducerSettings", "TopicSettings"]


@dataclass(frozen=True, kw_only=True)
class TopicSettings(KafkaSettings):
    """Create the tickets topic, or add partitions up to the wanted count (never remove any)."""

    partitions: int = setting(
        "TOPIC_PARTITIONS",
        "--partitions",
        3,
        "Partitions of the topic when it is created; python -m producer.topic also adds partitions up to it",
        at_least(1),
    )
    connect_timeout_seconds: float = setting(
        "KAFKA_CONNECT_TIMEOUT_SECONDS",
        "--connect-timeout-seconds",
        30.0,
        "How long to wait for the broker at start before failing",
        at_least(1),
    )


@dataclass(frozen=True, kw_only=True)
class ProducerSettings(TopicSettings, ProgressSettings, MetricsSettings):
    """Generate support tickets into Kafka continuously."""

    rate: float = setting(
        "PRODUCER_RATE", "--rate", 20.0, "Tickets per second; 0 = as fast as possible", at_least(0)
    )
    count: int = setting("PRODUCER_COUNT", "--count", 0, "Tickets to send; 0 = forever", at_least(0))
    clients: int = setting(
        "PRODUCER_CLIENTS", "--clients", 5000, "Size of the client population", at_least(1)
    )
    seed: int = setting(
        "PRODUCER_SEED", "--seed", -1, "Random seed of the generator; -1 = random", at_least(-1)
    )
    stall_timeout_seconds: float = setting(
        "PRODUCER_STALL_TIMEOUT_SECONDS",
        "--stall-timeout-seconds",
        30.0,
        "Restart the Kafka client, re-sending what it held, when queued tickets get no"
        " acknowledgement for this long while the broker answers; 0 = never",
        at_least(0),
    )
    ledger_file: str = setting(
        "PRODUCER_LEDGER_FILE",
        "--ledger-file",
        "",
        "Append each acknowledged ticket_id to this file (for audits and tests); empty = off",
    )
