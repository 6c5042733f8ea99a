"""The live dashboard's page (NiceGUI): one Snapshot read every few seconds, shown by every
open page."""

from __future__ import annotations

import logging
from datetime import datetime

from nicegui import app, run, ui

from core.kafka import KafkaConnection
from core.postgres import settings_connection
from dashboard.auth import BasicAuthMiddleware
from dashboard.lag import LagReader
from dashboard.settings import DashboardSettings
from dashboard.snapshot import Snapshot, read_snapshot

__all__ = ["HEALTH_PATH", "UNAVAILABLE", "SharedSnapshot", "build_page", "take_snapshot"]

# Answers while the web server runs, without touching PostgreSQL or Kafka: the chart's probes.
# The one path that asks for no credentials.
HEALTH_PATH = "/healthz"
# What the page says of failing reads. The exception's text stays in the log: it can name the
# database's host, port and role, which a reader of the page need not learn.
UNAVAILABLE = "figures unavailable; see the dashboard's log"

logger = logging.getLogger(__name__)


def take_snapshot(settings: DashboardSettings, lag_reader: LagReader) -> Snapshot:
    """The tables' figures (one read-only transaction) and the consumer groups' lag."""
    with (
        settings_connection(settings, application_name="dashboard") as conn,
        conn.cursor() as cur,
    ):
        conn.set_session(readonly=True)
        snapshot = read_snapshot(cur)
    groups = [g.strip() for g in settings.consumer_groups.split(",") if g.strip()]
    try:
        snapshot.lag = lag_reader.read(groups)
    except Exception as e:  # the page stays up while the broker is away
        logger.warning("lag unavailable: %s", e)
    return snapshot


class SharedSnapshot:
    """The latest Snapshot, read by one timer for all open pages and off the event loop: the
    database sees one read per refresh, however many pages are open."""

    def __init__(self, settings: DashboardSettings, lag_reader: LagReader) -> None:
        self._settings, self._lag_reader = settings, lag_reader
        self.latest: Snapshot | None = None
        self.read_at: datetime | None = None
        self.failure: str | None = None  # UNAVAILABLE while the reads fail
        self.failing_since: datetime | None = None

    async def refresh(self) -> None:
        try:
            snapshot = await run.io_bound(take_snapshot, self._settings, self._lag_reader)
        except Exception as e:  # PostgreSQL away: the pages keep the last figures, and say so
            if self.failure is None:
                self.failing_since = datetime.now()
            self.failure = UNAVAILABLE
            logger.warning("figures unavailable, keeping the last ones: %s: %s", type(e).__name__, e)
        else:
            self.latest, self.read_at = snapshot, datetime.now()
            self.failure = self.failing_since = None

    def status(self) -> str:
        """When the figures were read, or since when reads fail (why: in the log only)."""
        if self.failure is not None:
            shown = f"figures of {self.read_at:%H:%M:%S}" if self.read_at else "no figures yet"
            return f"{shown}; reads failing since {self.failing_since:%H:%M:%S}: {self.failure}"
        if self.read_at is None:
            return "first read under way"
        return f"updated {self.read_at:%H:%M:%S}"


def _figure(title: str, key: str) -> ui.label:
    with ui.card().classes("items-center"):
        ui.label(title).classes("text-sm text-gray-500")
        return ui.label("…").classes("text-2xl font-bold").props(f"id={key}")


def build_page(settings: DashboardSettings) -> None:
    """The page at / (figures, counts, latency, lag, latest tickets and rejects) and the health
    check at HEALTH_PATH; with a user and password, every other path asks for them."""
    if settings.authenticates:
        app.add_middleware(
            BasicAuthMiddleware,
            user=settings.user,
            password=settings.password,
            open_paths=frozenset({HEALTH_PATH}),
        )
    shared = SharedSnapshot(settings, LagReader(KafkaConnection.from_settings(settings), settings.topic))
    app.timer(settings.refresh_seconds, shared.refresh)

    @app.get(HEALTH_PATH)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @ui.page("/")
    def page() -> None:
        ui.label("ticket-pipeline").classes("text-3xl")
        status = ui.label(shared.status()).props("id=status")
        with ui.row():
            for number, url in enumerate(u.strip() for u in settings.spark_ui_urls.split(",")):
                ui.link(f"Spark UI ({('enrichment', 'aggregation')[number] if number < 2 else url})", url)
        with ui.row():
            stored = _figure("tickets stored", "stored")
            rate = _figure("tickets/s (last 10 s)", "rate")
            latency = _figure("latency p50 / p95 / p99 (5 min)", "latency")
            lag = _figure("lag (records)", "lag")
        with ui.row():
            types = ui.table(columns=_columns("type", "count"), rows=[], row_key="type").props("id=types")
            teams = ui.table(columns=_columns("team", "count"), rows=[], row_key="team").props("id=teams")
            reasons = ui.table(columns=_columns("reason", "count"), rows=[], row_key="reason").props(
                "id=reasons"
            )
        ui.label("Latest enriched tickets").classes("text-xl")
        latest = ui.table(
            columns=_columns("ticket_id", "client_id", "type", "priority", "team", "request"),
            rows=[],
            row_key="ticket_id",
        ).props("id=latest")
        ui.label("Latest rejected records").classes("text-xl")
        rejected = ui.table(
            columns=_columns("kafka_partition", "kafka_offset", "reason"), rows=[], row_key="kafka_offset"
        ).props("id=rejected")

        def show() -> None:
            status.text = shared.status()
            status.classes(replace="text-red-700" if shared.failure else "text-gray-500")
            snapshot = shared.latest
            if snapshot is None:  # the first read is still under way
                return
            stored.text = f"{snapshot.stored:,}"
            rate.text = f"{snapshot.rate_per_second:.1f}"
            quantiles = snapshot.latency_p50_p95_p99
            latency.text = " / ".join(f"{q:.2f} s" for q in quantiles) if quantiles else "–"
            lag.text = ", ".join(
                f"{g.removeprefix('ticket-pipeline-')} {n:,}" for g, n in snapshot.lag.items()
            )
            types.rows = [{"type": k, "count": v} for k, v in snapshot.counts_by_type.items()]
            teams.rows = [{"team": k, "count": v} for k, v in snapshot.counts_by_team.items()]
            reasons.rows = [{"reason": k, "count": v} for k, v in snapshot.rejected_by_reason.items()]
            latest.rows = [{**t, "request": t["request"][:80]} for t in snapshot.latest]
            rejected.rows = snapshot.latest_rejected

        show()
        ui.timer(settings.refresh_seconds, show)


def _columns(*names: str) -> list[dict]:
    return [{"name": n, "label": n, "field": n, "align": "left"} for n in names]
