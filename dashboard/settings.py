"""Settings of the live dashboard (`python -m dashboard`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.components import DASHBOARD, SPARK_JOBS
from core.settings import DatabaseSettings, KafkaSettings, at_least, setting

__all__ = ["DashboardSettings"]


@dataclass(frozen=True, kw_only=True)
class DashboardSettings(KafkaSettings, DatabaseSettings):
    """A live view of the pipeline: rate, counts, latest tickets, rejects, latency, lag."""

    port: int = setting(
        "DASHBOARD_PORT", "--port", DASHBOARD.port, "Port of the dashboard's web page", at_least(1)
    )
    refresh_seconds: float = setting(
        "DASHBOARD_REFRESH_SECONDS", "--refresh-seconds", 2.0, "Seconds between two refreshes", at_least(0.5)
    )
    consumer_groups: str = setting(
        "DASHBOARD_CONSUMER_GROUPS",
        "--consumer-groups",
        ",".join(job.consumer_group for job in SPARK_JOBS),
        "Consumer groups whose lag is shown (the jobs mirror their offsets to them)",
    )
    spark_ui_urls: str = setting(
        "DASHBOARD_SPARK_UI_URLS",
        "--spark-ui-urls",
        ",".join(job.local_url for job in SPARK_JOBS),
        "Links to the Spark UIs, enrichment first",
    )
