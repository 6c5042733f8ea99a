"""The chart serves each component on the ports of core.components, the one home of them."""

from __future__ import annotations

from typing import Any

import yaml

from core.components import AGGREGATION, BROKER, CONSOLE, DASHBOARD, DATABASE, ENRICHMENT, PRODUCER

from .render import CHART_DIR, find


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))


def test_should_default_to_the_registrys_metrics_and_ui_ports():
    """values.yaml's producer, job and dashboard ports are those of core.components."""
    values = _values()
    assert values["producer"]["metricsPort"] == PRODUCER.metrics_port
    assert values["dashboard"]["port"] == DASHBOARD.port
    for job in (ENRICHMENT, AGGREGATION):
        assert values["spark"][job.name]["uiPort"] == job.port
        assert values["spark"][job.name]["metricsPort"] == job.metrics_port


def test_should_serve_the_broker_database_console_and_dashboard_on_the_registrys_ports(
    default_objects: list[dict[str, Any]],
):
    """The rendered Services listen where core.components says, as the documented
    port-forwards and the clients' defaults expect."""
    for component in (BROKER, DATABASE, CONSOLE, DASHBOARD):
        name = "redpanda" if component is BROKER else component.name
        ports = [p["port"] for p in find(default_objects, "Service", name)["spec"]["ports"]]
        assert component.port in ports, (name, ports)
