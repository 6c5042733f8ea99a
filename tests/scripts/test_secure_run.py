"""`make run` over SASL_SSL (EMBEDDED_KAFKA_SECURITY=SASL_SSL): the producer, both Spark jobs,
the topic step and the dashboard talk TLS and SCRAM to the broker, and store every ticket;
a plaintext client, a wrong password and an unknown CA fail at start, naming the setting; the
password shows in no log and in no page of the Spark UI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from core.kafka import BrokerUnavailable, KafkaConnection, wait_for_broker
from core.settings import REPO_ROOT
from scripts.embedded.kafka_broker import CLIENT_USER
from scripts.embedded.tls import make_server_tls
from tests.embedded_run import embedded_run, wait_until

pytestmark = pytest.mark.integration

TICKETS = 300
COUNTS = "SELECT (SELECT count(*) FROM tickets), (SELECT sum(ticket_count) FROM tickets_aggregation)"


def client_env(data_dir: Path, bootstrap: str, **overrides: str) -> dict[str, str]:
    """What `make run` gives its services to reach its SASL_SSL broker, with `overrides`."""
    kafka = data_dir / "kafka"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": CLIENT_USER,
        "KAFKA_SASL_PASSWORD": (kafka / "secrets" / CLIENT_USER).read_text().strip(),
        "KAFKA_SSL_CA_FILE": str(kafka / "tls" / "ca.pem"),
        **overrides,
    }


def run_module(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args], env={**environ, **env}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def spark_ui_pages(port: int) -> str:
    """The SQL plans and the environment of the job's Spark application, as its REST API serves them."""
    base = f"http://127.0.0.1:{port}/api/v1/applications"
    with urllib.request.urlopen(base, timeout=10) as response:
        app = json.load(response)[0]["id"]
    pages = []
    for path in ("sql?details=true&planDescription=true", "environment"):
        with urllib.request.urlopen(f"{base}/{app}/{path}", timeout=10) as response:
            pages.append(response.read().decode())
    return "\n".join(pages)


def test_make_run_over_sasl_ssl_stores_every_ticket_and_refuses_wrong_credentials(tmp_path: Path) -> None:
    with embedded_run(
        tmp_path, EMBEDDED_KAFKA_SECURITY="SASL_SSL", PRODUCER_COUNT=str(TICKETS), PRODUCER_RATE="100"
    ) as run:
        assert "SASL_SSL" in run.banner
        bootstrap = f"127.0.0.1:{run.kafka_port}"
        postgres = f"postgresql://tickets@127.0.0.1:{run.postgres_port}/tickets"

        def counts() -> list[tuple]:
            with psycopg2.connect(postgres, password=run.postgres_password()) as conn, conn.cursor() as cur:
                cur.execute(COUNTS)
                return cur.fetchall()

        wait_until(
            "all tickets stored and counted over SASL_SSL", lambda: counts() == [(TICKETS, TICKETS)], 300
        )

        with pytest.raises(BrokerUnavailable):
            wait_for_broker(KafkaConnection(bootstrap), 5)
        env = client_env(run.data_dir, bootstrap)
        wrong = run_module("producer", {**env, "KAFKA_SASL_PASSWORD": "wrong", "PRODUCER_COUNT": "1"})
        assert wrong.returncode == 1, wrong.stderr
        assert "refused the credentials of --kafka-sasl-username / KAFKA_SASL_USERNAME" in wrong.stderr
        assert "KAFKA_SASL_PASSWORD" in wrong.stderr
        other_ca = make_server_tls(tmp_path / "other-ca", "another").ca_file
        unknown = run_module("producer.topic", {**env, "KAFKA_SSL_CA_FILE": str(other_ca)})
        assert unknown.returncode == 1, unknown.stderr
        assert f"not trusted by --kafka-ssl-ca-file / KAFKA_SSL_CA_FILE={other_ca}" in unknown.stderr
        no_password = run_module("producer", {**env, "KAFKA_SASL_PASSWORD": ""})
        assert no_password.returncode == 2, no_password.stderr
        assert "invalid setting KAFKA_SASL_PASSWORD: required with KAFKA_SECURITY_PROTOCOL=SASL_SSL" in (
            no_password.stderr
        )
        job = run_module("jobs.enrichment", {**env, "KAFKA_SASL_PASSWORD": "wrong"}, "--metrics-port", "-1")
        assert job.returncode != 0
        assert "refused the credentials" in job.stderr and "KAFKA_SASL_PASSWORD" in job.stderr

        password = env["KAFKA_SASL_PASSWORD"]
        for log in (run.data_dir / "logs").glob("*.log"):
            assert password not in log.read_text(errors="replace"), log.name
        ui_ports = [
            int(port)
            for port in re.findall(r"http://127\.0\.0\.1:(\d+) \((?:enrichment|aggregation)\)", run.banner)
        ]
        assert len(ui_ports) == 2, run.banner
        for port in ui_ports:
            pages = spark_ui_pages(port)
            # The options that hold the password are redacted wherever Spark shows them (the
            # setting's own value names "password": Spark shows it redacted too).
            assert '"spark.sql.redaction.options.regex"' in pages
            assert password not in pages
