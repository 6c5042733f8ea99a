"""`make run`: the whole pipeline on one machine, without Docker.

Starts a Kafka broker (KRaft) and a private PostgreSQL (unless DATABASE_URL names a
server), applies the schema, creates the topic, then runs the producer and both Spark jobs
in local mode, streaming their logs; the enrichment also writes the Delta table under
.local/run/delta (unless DELTA_TABLE_URI says otherwise). Ctrl-C stops everything; the next
run reuses the data and checkpoints under .local/run.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.components import BROKER, DATABASE
from core.contract import TOPIC
from core.logs import configure_logging
from core.settings import LOCAL_DIR, REPO_ROOT, SettingError, at_least, load, mask_url, one_of, setting
from dashboard.settings import DashboardSettings
from jobs.aggregation import SPEC as AGGREGATION
from jobs.enrichment import SPEC as ENRICHMENT
from producer.metrics import DEFAULT_METRICS_PORT as PRODUCER_METRICS_PORT
from scripts.embedded.kafka_broker import KafkaBroker
from scripts.embedded.ports import preferred_or_free
from scripts.embedded.postgres_server import PostgresServer
from scripts.embedded.prerequisites import MissingPrerequisite, require_java
from scripts.embedded.supervisor import Service, Supervisor

logger = logging.getLogger("run")


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """Run the ticket pipeline embedded: broker, PostgreSQL, producer and both Spark jobs."""

    kafka_port: int = setting(
        "KAFKA_PORT", "--kafka-port", BROKER.port, "Port of the embedded Kafka broker", at_least(1)
    )
    postgres_port: int = setting(
        "POSTGRES_PORT", "--postgres-port", DATABASE.port, "Port of the embedded PostgreSQL", at_least(1)
    )
    kafka_security: str = setting(
        "EMBEDDED_KAFKA_SECURITY",
        "--kafka-security",
        "PLAINTEXT",
        "The embedded broker's client listener: PLAINTEXT, or SASL_SSL (TLS with a CA made in"
        " its folder, SCRAM-SHA-512 users); every service then connects with it",
        one_of("PLAINTEXT", "SASL_SSL"),
    )
    data_dir: str = setting(
        "RUN_DATA_DIR",
        "--data-dir",
        str(LOCAL_DIR / "run"),
        "Where the broker, database, checkpoints, Delta table and logs live",
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        settings = load(RunSettings, argv, prog="make run ARGS=")
        require_java()
    except (SettingError, MissingPrerequisite) as e:
        logger.error("%s", e)
        return 2
    data = Path(settings.data_dir)
    broker = KafkaBroker(
        data / "kafka",
        LOCAL_DIR / "jars" / "kafka",
        settings.kafka_port,
        settings.kafka_port + 1,
        secure=settings.kafka_security == "SASL_SSL",
    )
    external_url = os.environ.get("DATABASE_URL")
    postgres = None if external_url else PostgresServer(data / "postgres", port=settings.postgres_port)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    ports = Ports(
        metrics=_ports_in_use(
            {
                "producer": PRODUCER_METRICS_PORT,
                ENRICHMENT.name: ENRICHMENT.component.metrics_port,
                AGGREGATION.name: AGGREGATION.component.metrics_port,
            }
        ),
        spark_ui=_ports_in_use({spec.name: spec.component.port for spec in (ENRICHMENT, AGGREGATION)}),
        dashboard=preferred_or_free(DashboardSettings.port),
    )
    supervisor = None
    try:
        broker.start()
        env.update(broker.client_env())
        if postgres:
            postgres.start()
            env.update(PGPASSFILE=str(postgres.pgpass_file))
            env.pop("PGPASSWORD", None)
            urls = DatabaseUrls(postgres.database_url, postgres.writer_url, postgres.reader_url)
        else:
            urls = DatabaseUrls(external_url, external_url, external_url)
        env["DATABASE_URL"] = urls.owner
        subprocess.run([sys.executable, "-m", "core.migrate"], env=env, check=True, cwd=REPO_ROOT)
        # As the chart's topic Job: create the topic, or bring an older run's to the contract's
        # timestamp type (the producer alone would only create a missing one).
        subprocess.run([sys.executable, "-m", "producer.topic"], env=env, check=True, cwd=REPO_ROOT)
        supervisor = Supervisor(_services(env, urls, data, ports))
        supervisor.start()
        _print_banner(env, urls, broker, postgres, data, ports)
        supervisor.run_until_stopped()
    except (MissingPrerequisite, RuntimeError, subprocess.CalledProcessError) as e:
        logger.error("%s", e)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        logger.info("stopping the pipeline")
        if supervisor:
            supervisor.stop()
        broker.stop()
        if postgres:
            postgres.stop()
        logger.info("stopped; data and checkpoints kept in %s", data)
    return 0


@dataclass(frozen=True)
class DatabaseUrls:
    """Who connects as whom: migrations as the owner, the Spark jobs as the least-privileged
    writer, the dashboard as the reader. A DATABASE_URL of the user's serves all three."""

    owner: str
    jobs: str
    dashboard: str


@dataclass(frozen=True)
class Ports:
    """The ports `make run` gives its services: each default, or a free one where it is taken
    (by another `make run`, say); the banner prints these."""

    metrics: dict[str, int]
    spark_ui: dict[str, int]
    dashboard: int

    def spark_ui_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.spark_ui.values()]


def delta_table_uri(env: dict[str, str], data: Path) -> str:
    """The enrichment's Delta table: the user's DELTA_TABLE_URI (empty: none), else a folder of
    the run's data."""
    return env.get("DELTA_TABLE_URI", str(data / "delta" / "tickets"))


def _services(env: dict[str, str], urls: DatabaseUrls, data: Path, ports: Ports) -> list[Service]:
    python = sys.executable
    logs = data / "logs"
    checkpoints = data / "checkpoints"
    only_for = {ENRICHMENT.name: {"DELTA_TABLE_URI": delta_table_uri(env, data)}}
    return [
        Service(
            "producer",
            [python, "-m", "producer"],
            dict(env, METRICS_PORT=str(ports.metrics["producer"])),
            logs / "producer.log",
        ),
        *(
            Service(
                job,
                [python, "-m", f"jobs.{job}"],
                dict(
                    env,
                    DATABASE_URL=urls.jobs,
                    CHECKPOINT_DIR=str(checkpoints / job),
                    METRICS_PORT=str(ports.metrics[job]),
                    SPARK_UI_PORT=str(ports.spark_ui[job]),
                    **only_for.get(job, {}),
                ),
                logs / f"{job}.log",
            )
            for job in (ENRICHMENT.name, AGGREGATION.name)
        ),
        # Reads the tables as the reader role, in read-only transactions.
        Service(
            "dashboard",
            [python, "-m", "dashboard"],
            dict(
                env,
                DATABASE_URL=urls.dashboard,
                DASHBOARD_PORT=str(ports.dashboard),
                DASHBOARD_SPARK_UI_URLS=",".join(ports.spark_ui_urls()),
            ),
            logs / "dashboard.log",
        ),
    ]


def _security(broker: KafkaBroker) -> str:
    connection = broker.connection()
    if not broker.secure:
        return "(plaintext)"
    return (
        f"({connection.security_protocol}, user {connection.sasl_username},"
        f" CA {connection.ssl_ca_file}, password in {broker.data_dir / 'secrets'})"
    )


def _ports_in_use(defaults: dict[str, int]) -> dict[str, int]:
    """Each default port, or a free one where the default is taken."""
    return {name: preferred_or_free(port) for name, port in defaults.items()}


def _print_banner(
    env: dict[str, str],
    urls: DatabaseUrls,
    broker: KafkaBroker,
    postgres: PostgresServer | None,
    data: Path,
    ports: Ports,
) -> None:
    enrichment_ui, aggregation_ui = ports.spark_ui_urls()
    topic = env.get("TICKETS_TOPIC", TOPIC)
    psql = (
        f"PGPASSFILE={postgres.pgpass_file} psql {postgres.database_url}"
        if postgres
        else f"psql {mask_url(urls.owner)}"
    )
    print(
        "\n".join(
            [
                "",
                "ticket-pipeline is running (Ctrl-C stops it)",
                f"  dashboard        http://127.0.0.1:{ports.dashboard}",
                f"  Kafka broker     {broker.bootstrap_servers}  topic {topic}  {_security(broker)}",
                f"  PostgreSQL       {mask_url(urls.owner)}"
                f" (jobs: {mask_url(urls.jobs)}, dashboard: {mask_url(urls.dashboard)})",
                f"  query it         {psql}",
                f"  Spark UIs        {enrichment_ui} (enrichment)  {aggregation_ui} (aggregation)",
                "  metrics          "
                + "  ".join(
                    f"http://127.0.0.1:{port}/metrics ({name})" for name, port in ports.metrics.items()
                ),
                f"  Spark metrics    {enrichment_ui}/metrics/prometheus  {aggregation_ui}/metrics/prometheus",
                f"  Delta table      {delta_table_uri(env, data) or 'off (DELTA_TABLE_URI is empty)'}",
                f"  data, logs       {data}",
                "",
            ]
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
