"""Generate support tickets into Kafka: `python -m producer --rate 50`.

Flags and environment variables are listed by `python -m producer --help`.
SIGINT/SIGTERM flush what is in flight and exit 0.
"""

from __future__ import annotations

import logging
import sys

from core.kafka import BrokerUnavailable
from core.logs import configure_logging
from core.metrics import metrics_port, serve_metrics
from core.settings import SettingError, load_or_exit
from producer.kafka_producer import TicketProducer
from producer.metrics import DEFAULT_METRICS_PORT, producer_registry
from producer.settings import ProducerSettings
from producer.topic import TopicError

logger = logging.getLogger("producer")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_or_exit(ProducerSettings, argv, "python -m producer", logger)
    producer = TicketProducer(settings)
    producer.install_signal_handlers()
    try:
        port = metrics_port(settings.metrics_port, DEFAULT_METRICS_PORT)
        serve_metrics(producer_registry(producer), port, "producer", settings.bind_host)
    except SettingError as e:
        logger.error("%s", e)
        return 2
    try:
        producer.check_broker()
    except (BrokerUnavailable, TopicError) as e:  # unreachable broker, or a topic it refuses to create
        logger.error("%s", e)
        return 1
    logger.info(
        "producing to %s on %s at %s tickets/s%s",
        settings.topic,
        settings.bootstrap_servers,
        settings.rate or "max",
        f", {settings.count} tickets" if settings.count else "",
    )
    counters = producer.run()
    undelivered = counters.sent - counters.acknowledged - counters.failed
    if counters.failed or undelivered:
        logger.error("%d failed, %d undelivered", counters.failed, undelivered)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
