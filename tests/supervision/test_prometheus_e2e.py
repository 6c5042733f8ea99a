"""A real Prometheus, built from the pinned Go module, against the embedded pipeline of
`make run`: it scrapes every component, loads the alert rules, and each query of the Grafana
dashboard returns the series it charts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer

from core.settings import REPO_ROOT
from scripts.embedded.ports import free_port
from scripts.ops.grafana_dashboard import DASHBOARD_FILE
from tests.embedded_run import embedded_run, wait_until
from tests.jobs.test_validation import CORPUS

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
RULES = REPO_ROOT / "charts" / "files" / "alerts.rules.yaml"
SERIES_TIMEOUT_SECONDS = 180


def api(port: int, path: str, **params: str) -> dict:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}{query}", timeout=10) as response:
        return json.loads(response.read())["data"]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard, $__rate_interval made concrete."""
    panels = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))["panels"]
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", "30s"))
        for panel in panels
        for target in panel.get("targets", [])
    ]


def scrape_config(banner: str) -> dict:
    """Prometheus' configuration: the metrics endpoints and Spark's that `make run` prints."""
    ours = re.findall(r"http://(\S+)/metrics \((\w+)\)", banner)
    spark = re.findall(r"http://(\S+)/metrics/prometheus", banner)
    assert {name for _, name in ours} == {"producer", "enrichment", "aggregation"}, banner
    assert len(spark) == 2, banner
    return {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "ticket-pipeline", "static_configs": [{"targets": [h for h, _ in ours]}]},
            {
                "job_name": "spark",
                "metrics_path": "/metrics/prometheus",
                # Spark's servlet answers text/plain without a version.
                "fallback_scrape_protocol": "PrometheusText0.0.4",
                "static_configs": [{"targets": spark}],
            },
        ],
    }


@pytest.mark.skipif(
    PROMETHEUS is None,
    reason="prometheus is not on PATH: `make test` builds it into .local/bin (make prometheus)",
)
def test_prometheus_scrapes_every_component_and_each_dashboard_query_returns_series(tmp_path: Path) -> None:
    prometheus_port = free_port()
    with embedded_run(tmp_path, PRODUCER_RATE="100") as run:
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(run.banner)))
        # A few invalid records, so that rejects have series too.
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{run.kafka_port}"})
        for value in CORPUS[:10]:
            producer.produce("client_tickets", key=b"bad", value=value)
        assert producer.flush(30) == 0
        with (tmp_path / "prometheus.log").open("w") as log:
            prometheus = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                check_prometheus(prometheus_port)
            finally:
                prometheus.terminate()
                prometheus.wait(30)


def check_prometheus(port: int) -> None:
    """Every target up, each dashboard query with series, the rules healthy and none firing."""

    def all_targets_up():
        targets = api(port, "targets")["activeTargets"]
        return len(targets) == 5 and all(t["health"] == "up" for t in targets) and targets

    wait_until("every target up", all_targets_up, SERIES_TIMEOUT_SECONDS)
    for title, expr in dashboard_queries():
        wait_until(
            f"series for {title!r}: {expr}",
            lambda expr=expr: api(port, "query", query=expr)["result"],
            SERIES_TIMEOUT_SECONDS,
            poll_seconds=2,
        )
    spark_series = api(port, "query", query='count({job="spark"})')["result"]
    assert spark_series and float(spark_series[0]["value"][1]) > 10
    rules = [rule for group in api(port, "rules")["groups"] for rule in group["rules"]]
    assert len(rules) == len(yaml.safe_load(RULES.read_text())["groups"][0]["rules"])
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # A healthy pipeline fires none of them (one may be pending: the bad records above).
    alerts = api(port, "alerts")["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"] == []
