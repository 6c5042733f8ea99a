"""The chart's Grafana dashboard: built from code, committed as built, querying real metrics."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from core.settings import load
from jobs.metrics import JobMetrics
from producer.kafka_producer import TicketProducer
from producer.metrics import producer_registry
from producer.settings import ProducerSettings
from scripts.ops.grafana_dashboard import DASHBOARD_FILE, main

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry can expose, labelled series not yet set included."""
    return {
        family.name + suffix for family in registry.collect() for suffix in SUFFIXES.get(family.type, ("",))
    }


def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def test_the_committed_dashboard_is_the_one_the_code_builds():
    assert main(["--check"]) == 0, "run `python -m scripts.ops.grafana_dashboard` and commit the file"


def test_every_query_names_only_metrics_the_components_export():
    """A renamed metric cannot leave a panel silently empty."""
    exported = exported_names(JobMetrics("enrichment").registry)
    exported |= exported_names(producer_registry(TicketProducer(load(ProducerSettings, [], environ={}))))
    queries = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    used = {name for expr in queries for name in re.findall(r"\bticket_pipeline_\w+", expr)}
    assert used and used <= exported, used - exported


def test_the_panels_answer_the_operators_questions():
    """Flow in and out, types and teams, rejects by reason, latency quantiles, lag per
    partition and batch durations each have a panel, all on the chosen Prometheus."""
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    by_title = {p["title"]: p for p in panels}
    wanted = (
        "produced, stored, rejected",
        "per type",
        "per team",
        "by reason",
        "latency",
        "Lag per partition",
    )
    for words in (*wanted, "duration"):
        assert any(words in title for title in by_title), words
    latency = next(p for t, p in by_title.items() if "latency" in t)
    assert [t["legendFormat"].split()[0] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    assert len({p["id"] for p in dashboard()["panels"]}) == len(dashboard()["panels"])
