"""A single-node Apache Kafka broker in KRaft mode, run from the jars in .local/jars/kafka.

Used by `make run` and by the test fixtures. It speaks the same Kafka API as the
Redpanda broker that the Helm chart deploys.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.components import BROKER
from core.kafka import BrokerUnavailable, admin_client, wait_for_broker
from scripts.embedded.prerequisites import MissingPrerequisite, require_java

__all__ = ["KafkaBroker"]

logger = logging.getLogger(__name__)

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
    _process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

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
        config = self._write_config()
        classpath = f"{self.jars_dir}/*"
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        if not (self.data_dir / "logs" / "meta.properties").exists():
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
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.advertised_port or self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        return path

    def _wait_ready(self, timeout_seconds: float) -> None:
        try:
            # Short attempts: a broker that exits while starting is noticed within seconds. The
            # port opens seconds after the start: reconnect often, not with growing back-off.
            wait_for_broker(
                self.bootstrap_servers,
                timeout_seconds,
                admin=admin_client(self.bootstrap_servers, {"reconnect.backoff.max.ms": 300}),
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
