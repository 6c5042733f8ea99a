"""Kafka clients for every part of the pipeline (confluent-kafka / librdkafka, Spark's source).

Every client takes its configuration from here: `client_config` for librdkafka clients,
`spark_options` for Spark's Kafka source. Both start from a `KafkaConnection`: the brokers,
and how to talk to them (TLS, SASL), built once from the settings (`from_settings`). Where
librdkafka and Spark's Java client name a setting differently (the CA, SASL credentials),
`spark_options` translates. A plain "host:port" string stands for a PLAINTEXT connection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from core.settings import SettingError

if TYPE_CHECKING:
    from core.settings import KafkaSettings

__all__ = [
    "PASSWORD_ENV",
    "BrokerUnavailable",
    "Connectable",
    "KafkaConnection",
    "admin_client",
    "client_config",
    "spark_options",
    "wait_for_broker",
]

logger = logging.getLogger(__name__)

# The setting that an unreachable broker's message names (core.settings.KafkaSettings).
_BOOTSTRAP_SETTING = "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS"
_CA_SETTING = "--kafka-ssl-ca-file / KAFKA_SSL_CA_FILE"
_USER_SETTING = "--kafka-sasl-username / KAFKA_SASL_USERNAME"
# SASL's password: an environment variable only (a Secret on Kubernetes), never a flag.
PASSWORD_ENV = "KAFKA_SASL_PASSWORD"
# librdkafka logs every refused connection; callers report the errors themselves.
_QUIET = {"log_level": 0}
# Spark's Java client: the login module of each SASL mechanism.
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


class BrokerUnavailable(RuntimeError):
    """The Kafka broker did not answer within the timeout, or refused the client's TLS or
    credentials; the message names the setting."""


@dataclass(frozen=True)
class KafkaConnection:
    """The brokers, and how to talk to them: the protocol, the SASL user, the CA."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_file: str = ""

    @classmethod
    def from_settings(
        cls, settings: KafkaSettings, environ: Mapping[str, str] | None = None
    ) -> KafkaConnection:
        """The connection of a program's settings, with SASL's password from KAFKA_SASL_PASSWORD;
        SettingError if a SASL protocol has no password."""
        environ = os.environ if environ is None else environ
        sasl = settings.kafka_security_protocol.startswith("SASL_")
        password = environ.get(PASSWORD_ENV, "") if sasl else ""
        if sasl and not password:
            raise SettingError(
                f"invalid setting {PASSWORD_ENV}: required with"
                f" KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
            )
        return cls(
            settings.bootstrap_servers,
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username if sasl else "",
            password,
            settings.kafka_ssl_ca_file if settings.kafka_security_protocol.endswith("SSL") else "",
        )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def librdkafka(self) -> dict[str, str]:
        """This connection in librdkafka's property names."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.uses_sasl:
            config.update(
                {"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                 "sasl.password": self.sasl_password}
            )  # fmt: skip
        if self.uses_tls:
            # "probe": the system's CA bundle, wherever this machine keeps it (the wheels'
            # own OpenSSL knows no default path).
            config["ssl.ca.location"] = self.ssl_ca_file or "probe"
        return config

    def java(self) -> dict[str, str]:
        """This connection in the Java client's property names (Spark's source and sink)."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.uses_sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.jaas.config"] = (
                f"{_LOGIN_MODULES[self.sasl_mechanism]} required"
                f" username={_jaas_quote(self.sasl_username)} password={_jaas_quote(self.sasl_password)};"
            )
        if self.uses_tls and self.ssl_ca_file:
            config["ssl.truststore.type"] = "PEM"
            config["ssl.truststore.location"] = self.ssl_ca_file
        return config


Connectable = KafkaConnection | str


def _jaas_quote(value: str) -> str:
    """A JAAS option value: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _as_connection(connection: Connectable) -> KafkaConnection:
    return connection if isinstance(connection, KafkaConnection) else KafkaConnection(connection)


def _unreachable(
    connection: KafkaConnection, timeout_seconds: float, detail: object, timeout_setting: str
) -> BrokerUnavailable:
    named = f" ({timeout_setting})" if timeout_setting else ""
    return BrokerUnavailable(
        f"Kafka broker unreachable at {_BOOTSTRAP_SETTING}={connection.bootstrap_servers}"
        f" after {timeout_seconds:g}s{named}: {detail}"
    )


def _refused(connection: KafkaConnection, error: KafkaError) -> BrokerUnavailable | None:
    """The error that no retry will cure, naming the setting to fix; None for other errors."""
    text = error.str()
    if error.code() == KafkaError._AUTHENTICATION and connection.uses_sasl:
        return BrokerUnavailable(
            f"Kafka at {connection.bootstrap_servers} refused the credentials of {_USER_SETTING}="
            f"{connection.sasl_username} ({PASSWORD_ENV}, mechanism {connection.sasl_mechanism}): {text}"
        )
    if connection.uses_tls and ("certificate verify failed" in text or error.code() == KafkaError._SSL):
        ca = connection.ssl_ca_file or "the system's CAs"
        return BrokerUnavailable(
            f"TLS with Kafka at {connection.bootstrap_servers} failed: its certificate is not"
            f" trusted by {_CA_SETTING}={ca}, or does not name that host: {text}"
        )
    return None


def client_config(connection: Connectable, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A librdkafka configuration: the connection, then the client's own keys (`extra`)."""
    return {**_as_connection(connection).librdkafka(), **(extra or {})}


def spark_options(connection: Connectable) -> dict[str, str]:
    """The connection as options of Spark's Kafka source (`kafka.`-prefixed)."""
    return {f"kafka.{key}": value for key, value in _as_connection(connection).java().items()}


def admin_client(connection: Connectable, extra: Mapping[str, Any] | None = None) -> AdminClient:
    """An admin client whose librdkafka log is silent (log_level 0)."""
    return AdminClient(client_config(connection, {**_QUIET, **(extra or {})}))


def wait_for_broker(
    connection: Connectable,
    timeout_seconds: float,
    *,
    extra: Mapping[str, Any] | None = None,
    timeout_setting: str = "",
    attempt_seconds: float | None = None,
    retry_seconds: float = 1.0,
    check: Callable[[], None] | None = None,
) -> ClusterMetadata:
    """Return the cluster's metadata once the broker answers; BrokerUnavailable after the
    timeout, or at once when the broker refuses the client's credentials or TLS.

    The admin client gets `extra` on top of the connection. Each attempt waits up to
    `attempt_seconds` (default: the time left), the next comes `retry_seconds` after a
    failed one; `check` runs before each and may raise to stop waiting. The error names
    `timeout_setting` when given.
    """
    connection = _as_connection(connection)
    refusals: list[KafkaError] = []
    admin = admin_client(connection, {**(extra or {}), "error_cb": refusals.append})
    deadline = time.monotonic() + timeout_seconds
    while True:
        if check:
            check()
        left = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(left, attempt_seconds or left), 0.1))
        except KafkaException as e:
            admin.poll(0)  # serves error_cb
            for error in refusals:
                refused = _refused(connection, error)
                if refused:
                    raise refused from e
            # A refused connection may fail at once: retry until the whole timeout has passed.
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _unreachable(connection, timeout_seconds, e, timeout_setting) from e
            logger.debug("waiting for the Kafka broker at %s: %s", connection.bootstrap_servers, e)
        time.sleep(min(retry_seconds, remaining))
