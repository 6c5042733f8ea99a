"""A single-node Apache Kafka broker in KRaft mode, run from the jars in .local/jars/kafka.

Used by `make run` and by the test fixtures. It speaks the same Kafka API as the
Redpanda broker that the Helm chart deploys. With `secure`, its one client listener is
SASL_SSL: TLS with a certificate of a CA made in its folder (scripts.embedded.tls), and
SCRAM-SHA-512 users whose passwords are made at the first start and kept in the folder.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.components import BROKER
from core.kafka import PASSWORD_ENV, BrokerUnavailable, KafkaConnection, wait_for_broker
from scripts.embedded.prerequisites import MissingPrerequisite, require_java
from scripts.embedded.private_files import write_private
from scripts.embedded.tls import make_server_tls

__all__ = ["CLIENT_USER", "KafkaBroker"]

logger = logging.getLogger(__name__)

# The SASL users of a secure broker: itself (inter-broker), and the pipeline's clients.
_BROKER_USER = "broker"
CLIENT_USER = "ticket-pipeline"
_MECHANISM = "SCRAM-SHA-512"

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
"""


@dataclass
class KafkaBroker:
    """A KRaft broker+controller on 127.0.0.1; data survives stop/start in `data_dir`."""

    data_dir: Path
    jars_dir: Path
    port: int = BROKER.port
    controller_port: int = 9093
    heap: str = "1g"
    log_level: str = "INFO"
    # The port clients are told to connect to (a proxy in front of the broker); None = port.
    advertised_port: int | None = None
    # SASL_SSL instead of PLAINTEXT on the client listener.
    secure: bool = False
    _process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connection(self, user: str = CLIENT_USER) -> KafkaConnection:
        """How a client reaches this broker, as `user` (SASL_SSL) or in plaintext."""
        if not self.secure:
            return KafkaConnection(self.bootstrap_servers)
        return KafkaConnection(
            self.bootstrap_servers,
            "SASL_SSL",
            _MECHANISM,
            user,
            self._password(user),
            str(self._tls().ca_file),
        )

    def client_env(self) -> dict[str, str]:
        """The environment that makes a program of the pipeline a client of this broker."""
        connection = self.connection()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": connection.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": connection.security_protocol,
        }
        if self.secure:
            env.update(
                KAFKA_SASL_MECHANISM=connection.sasl_mechanism,
                KAFKA_SASL_USERNAME=connection.sasl_username,
                KAFKA_SSL_CA_FILE=connection.ssl_ca_file,
                **{PASSWORD_ENV: connection.sasl_password},
            )
        return env

    @property
    def pid(self) -> int | None:
        """The broker JVM's process id, while it runs."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def start(self, timeout_seconds: float = 60) -> None:
        """Format the storage on first use, start the broker and wait until it answers."""
        java = require_java()
        if not any(self.jars_dir.glob("kafka_*.jar")):
            raise MissingPrerequisite(
                f"no Kafka broker jars in {self.jars_dir}: run `make jars` (scripts/setup/resolve_jars.sh)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        initialised = (self.data_dir / "logs" / "meta.properties").exists()
        if initialised and self.secure and not (self.data_dir / "secrets" / _BROKER_USER).exists():
            raise MissingPrerequisite(
                f"the broker's data in {self.data_dir} was made without SASL users, which only a new"
                " storage gets: run `make clean-data`, or give SASL_SSL another RUN_DATA_DIR"
            )
        config = self._write_config()
        classpath = f"{self.jars_dir}/*"
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        if not initialised:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            formatted = subprocess.run(
                [
                    java,
                    log4j,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                    *self._scram_users(),
                ],
                capture_output=True,
                text=True,
            )
            if formatted.returncode != 0:
                raise RuntimeError(f"formatting the Kafka storage failed: {formatted.stderr.strip()}")
        self._process = subprocess.Popen(
            [
                java,
                f"-Xmx{self.heap}",
                f"-Xms{self.heap}",
                "-XX:+UseG1GC",
                log4j,
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "broker.stderr", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        self._wait_ready(timeout_seconds)
        logger.info("Kafka broker ready on %s (pid %d)", self.bootstrap_servers, self._process.pid)

    def stop(self, timeout_seconds: float = 30) -> None:
        """Stop the broker cleanly (SIGTERM), killing it after the timeout."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL), as a crash would."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> Path:
        (self.data_dir / "log4j2.properties").write_text(
            _LOG4J2.format(log_file=self.data_dir / "broker.log", level=self.log_level)
        )
        name = "SASL_SSL" if self.secure else "PLAINTEXT"
        listeners = f"{name}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"{name}://127.0.0.1:{self.advertised_port or self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": name,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{name}:{name}",
            **(self._security_properties() if self.secure else {}),
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        path = self.data_dir / "server.properties"
        # It holds the broker's own SCRAM password when secure.
        write_private(path, "".join(f"{k}={v}\n" for k, v in properties.items()))
        return path

    def _tls(self):
        return make_server_tls(self.data_dir / "tls", "ticket-pipeline embedded Kafka")

    def _password(self, user: str) -> str:
        """The user's SCRAM password, made on first use and kept (owner-only) in the folder."""
        path = self.data_dir / "secrets" / user
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(path, secrets.token_urlsafe(24), exclusive=True)
        return path.read_text().strip()

    def _scram_users(self) -> list[str]:
        """The storage format's options that create the SCRAM users (KRaft keeps them)."""
        if not self.secure:
            return []
        return [
            f"--add-scram={_MECHANISM}=[name={user},password={self._password(user)}]"
            for user in (_BROKER_USER, CLIENT_USER)
        ]

    def _security_properties(self) -> dict[str, str]:
        """SASL_SSL: the broker's key and chain, the CA it trusts talking to itself, SCRAM."""
        tls = self._tls()
        jaas = KafkaConnection(
            self.bootstrap_servers, "SASL_SSL", _MECHANISM, _BROKER_USER, self._password(_BROKER_USER)
        ).java()["sasl.jaas.config"]
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.server_pem),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca_file),
            "sasl.enabled.mechanisms": _MECHANISM,
            "sasl.mechanism.inter.broker.protocol": _MECHANISM,
            f"listener.name.sasl_ssl.{_MECHANISM.lower()}.sasl.jaas.config": jaas,
        }

    def _wait_ready(self, timeout_seconds: float) -> None:
        try:
            # Short attempts: a broker that exits while starting is noticed within seconds. The
            # port opens seconds after the start: reconnect often, not with growing back-off.
            wait_for_broker(
                self.connection(_BROKER_USER),
                timeout_seconds,
                extra={"reconnect.backoff.max.ms": 300},
                attempt_seconds=2,
                retry_seconds=0.3,
                check=self._check_running,
            )
        except BrokerUnavailable as e:
            self.stop()
            raise RuntimeError(
                f"Kafka broker not ready on {self.bootstrap_servers} after {timeout_seconds}s"
            ) from e

    def _check_running(self) -> None:
        if self._process.poll() is not None:
            tail = (self.data_dir / "broker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Kafka broker exited with {self._process.returncode}:\n{tail}")
