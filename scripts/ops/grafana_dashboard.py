"""The Grafana dashboard of the chart, built from code: `python -m scripts.ops.grafana_dashboard`.

Writes charts/files/grafana-dashboard.json, which the chart ships in a ConfigMap for the
Grafana sidecar of kube-prometheus-stack (monitoring.grafanaDashboard.enable). `--check`
fails if the committed file differs from what this code builds, so it cannot drift; the
tests also check that every query names only metrics the components export.
Built with grafana-foundation-sdk (Grafana's typed builders, dev dependency).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from core.settings import REPO_ROOT

__all__ = ["DASHBOARD_FILE", "build", "render"]

DASHBOARD_FILE = REPO_ROOT / "charts" / "files" / "grafana-dashboard.json"
UID = "ticket-pipeline"
_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
_RATE = "[$__rate_interval]"
_ENRICHMENT = 'job_name="enrichment"'


def _query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(_DATASOURCE)


def _series(title: str, unit: str, *queries: prometheus.Dataquery, width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(_DATASOURCE).height(8).span(width)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _quantiles(metric: str, by: str, legend: str) -> list[prometheus.Dataquery]:
    return [
        _query(
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{_RATE})))",
            f"p{round(q * 100)} {legend}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def build() -> dashboard.Dashboard:
    """The dashboard: flow, types and teams, rejects, latency, lag, batches."""
    return (
        dashboard.Dashboard("ticket-pipeline")
        .uid(UID)
        .tags(["ticket-pipeline"])
        .description("Support tickets: producer, enrichment and aggregation (docs/operations.md)")
        .refresh("10s")
        .time("now-30m", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_row(dashboard.Row("Flow"))
        .with_panel(
            _series(
                "Tickets per second: produced, stored, rejected",
                "reqps",
                _query(f"sum(rate(ticket_pipeline_producer_tickets_acknowledged_total{_RATE}))", "produced"),
                _query(
                    f'sum(rate(ticket_pipeline_tickets_stored_total{{{_ENRICHMENT}, outcome="new"}}{_RATE}))',
                    "stored",
                    "B",
                ),
                _query(
                    f"sum(rate(ticket_pipeline_records_rejected_total{{{_ENRICHMENT}}}{_RATE}))",
                    "rejected",
                    "C",
                ),
            )
        )
        .with_panel(
            stat.Panel()
            .title("Seconds since each job's last micro-batch")
            .unit("s")
            .datasource(_DATASOURCE)
            .height(8)
            .span(12)
            .with_target(_query("time() - ticket_pipeline_last_batch_timestamp_seconds", "{{job_name}}"))
        )
        .with_row(dashboard.Row("Types and teams"))
        .with_panel(
            _series(
                "Valid tickets per second, per type",
                "reqps",
                _query(
                    f"sum by (type) (rate(ticket_pipeline_tickets_valid_total{{{_ENRICHMENT}}}{_RATE}))",
                    "{{type}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Valid tickets per second, per team",
                "reqps",
                _query(
                    f"sum by (team) (rate(ticket_pipeline_tickets_valid_total{{{_ENRICHMENT}}}{_RATE}))",
                    "{{team}}",
                ),
            )
        )
        .with_row(dashboard.Row("Rejects"))
        .with_panel(
            _series(
                "Rejected records per second, by reason",
                "reqps",
                _query(
                    f"sum by (reason) (rate(ticket_pipeline_records_rejected_total{{{_ENRICHMENT}}}{_RATE}))",
                    "{{reason}}",
                ),
                width=24,
            )
        )
        .with_row(dashboard.Row("Latency and lag"))
        .with_panel(
            _series(
                "End-to-end latency (created_at to stored or counted)",
                "s",
                *_quantiles("ticket_pipeline_latency_seconds", "job_name", "{{job_name}}"),
            )
        )
        .with_panel(
            _series(
                "Lag per partition (records not processed yet)",
                "short",
                _query(
                    "sum by (job_name, partition) (ticket_pipeline_consumer_lag_records)",
                    "{{job_name}} partition {{partition}}",
                ),
            )
        )
        .with_row(dashboard.Row("Micro-batches"))
        .with_panel(
            _series(
                "Micro-batch duration, Spark and PostgreSQL",
                "s",
                *_quantiles(
                    "ticket_pipeline_batch_duration_seconds", "job_name, part", "{{job_name}} {{part}}"
                ),
            )
        )
        .with_panel(
            _series(
                "Micro-batches per second",
                "ops",
                _query(f"sum by (job_name) (rate(ticket_pipeline_batches_total{_RATE}))", "{{job_name}}"),
            )
        )
    )


def render() -> str:
    """The dashboard's JSON, as committed in charts/files; panels numbered in order."""
    model = build().build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.ops.grafana_dashboard", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    parser.add_argument("--output", type=Path, default=DASHBOARD_FILE, help="where to write the JSON")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not args.output.is_file() or args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is stale: run python -m scripts.ops.grafana_dashboard", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
