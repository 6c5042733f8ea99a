"""Kafka clients for every part of the pipeline (confluent-kafka / librdkafka, Spark's source).

Every client takes its configuration from here: `client_config` for librdkafka clients,
`spark_options` for Spark's Kafka source. Both start from `_connection`, so a setting
that every client needs (security.protocol, SASL, a CA) is added there, once; where
librdkafka and Spark's Java client name it differently (the CA, SASL credentials),
`spark_options` translates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

__all__ = [
    "BrokerUnavailable",
    "admin_client",
    "client_config",
    "spark_options",
    "wait_for_broker",
]

logger = logging.getLogger(__name__)

# The setting that an unreachable broker's message names (core.settings.KafkaSettings).
_BOOTSTRAP_SETTING = "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS"
# librdkafka logs every refused connection; callers report the errors themselves.
_QUIET = {"log_level": 0}


class BrokerUnavailable(RuntimeError):
    """The Kafka broker did not answer within the timeout; the message names the setting."""


def _unreachable(
    bootstrap_servers: str, timeout_seconds: float, detail: object, timeout_setting: str
) -> BrokerUnavailable:
    named = f" ({timeout_setting})" if timeout_setting else ""
    return BrokerUnavailable(
        f"Kafka broker unreachable at {_BOOTSTRAP_SETTING}={bootstrap_servers}"
        f" after {timeout_seconds:g}s{named}: {detail}"
    )


def _connection(bootstrap_servers: str) -> dict[str, str]:
    """What every client needs to reach the brokers, in the Kafka property names."""
    return {"bootstrap.servers": bootstrap_servers}


def client_config(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A librdkafka configuration: the connection, then the client's own keys (`extra`)."""
    return {**_connection(bootstrap_servers), **(extra or {})}


def spark_options(bootstrap_servers: str) -> dict[str, str]:
    """The connection as options of Spark's Kafka source (`kafka.`-prefixed)."""
    return {f"kafka.{key}": value for key, value in _connection(bootstrap_servers).items()}


def admin_client(bootstrap_servers: str, extra: Mapping[str, Any] | None = None) -> AdminClient:
    """An admin client whose librdkafka log is silent (log_level 0)."""
    return AdminClient(client_config(bootstrap_servers, {**_QUIET, **(extra or {})}))


def wait_for_broker(
    bootstrap_servers: str,
    timeout_seconds: float,
    *,
    admin: AdminClient | None = None,
    timeout_setting: str = "",
    attempt_seconds: float | None = None,
    retry_seconds: float = 1.0,
    check: Callable[[], None] | None = None,
) -> ClusterMetadata:
    """Return the cluster's metadata once the broker answers; BrokerUnavailable after the timeout.

    `admin` is reused when given (else a fresh quiet one). Each attempt waits up to
    `attempt_seconds` (default: the time left), the next comes `retry_seconds` after a
    failed one; `check` runs before each and may raise to stop waiting. The error names
    `timeout_setting` when given.
    """
    admin = admin or admin_client(bootstrap_servers)
    deadline = time.monotonic() + timeout_seconds
    while True:
        if check:
            check()
        left = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(left, attempt_seconds or left), 0.1))
        except KafkaException as e:
            # A refused connection may fail at once: retry until the whole timeout has passed.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _unreachable(bootstrap_servers, timeout_seconds, e, timeout_setting) from e
            logger.debug("waiting for the Kafka broker at %s: %s", bootstrap_servers, e)
        time.sleep(min(retry_seconds, remaining))
