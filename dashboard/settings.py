"""Settings of the live dashboard (`python -m dashboard`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.components import DASHBOARD, SPARK_JOBS
from core.settings import (
    DatabaseSettings,
    KafkaSettings,
    ListenSettings,
    SettingError,
    at_least,
    is_loopback,
    load,
    setting,
)

__all__ = ["PASSWORD_ENV", "PROG", "DashboardSettings", "load_settings"]

PROG = "python -m dashboard"
# The page's password: an env var only, never a flag (a flag shows in `ps` and shell history).
PASSWORD_ENV = "DASHBOARD_PASSWORD"


@dataclass(frozen=True, kw_only=True)
class DashboardSettings(KafkaSettings, DatabaseSettings, ListenSettings):
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
    user: str = setting(
        "DASHBOARD_USER",
        "--user",
        "",
        f"User of the page's HTTP basic authentication, with the password of {PASSWORD_ENV};"
        " empty = none, allowed only when BIND_HOST is loopback",
    )
    # Read from PASSWORD_ENV by load_settings, never a flag; kept out of repr (and so of logs).
    password: str = dataclasses.field(default="", repr=False)

    @property
    def authenticates(self) -> bool:
        """Whether the page asks for the user and password."""
        return bool(self.user and self.password)


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> DashboardSettings:
    """DashboardSettings from flags, env vars and defaults, the password from PASSWORD_ENV.

    Raises SettingError when only one of the user and the password is set, or when neither is
    and BIND_HOST is not loopback: a page reachable from other machines needs credentials.
    """
    environ = os.environ if environ is None else environ
    settings = load(DashboardSettings, argv, environ, prog=PROG)
    settings = dataclasses.replace(settings, password=environ.get(PASSWORD_ENV, ""))
    if bool(settings.user) != bool(settings.password):
        raise SettingError(
            f"invalid settings: --user / DASHBOARD_USER and {PASSWORD_ENV} go together"
            f" (DASHBOARD_USER is {'set' if settings.user else 'empty'},"
            f" {PASSWORD_ENV} is {'set' if settings.password else 'empty'})"
        )
    if not settings.authenticates and not is_loopback(settings.bind_host):
        raise SettingError(
            f"invalid settings: --bind-host / BIND_HOST is {settings.bind_host!r}, not loopback:"
            f" set --user / DASHBOARD_USER and {PASSWORD_ENV}, so that the page asks for them"
        )
    return settings
