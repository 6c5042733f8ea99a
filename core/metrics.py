"""Serves a component's Prometheus metrics over HTTP (prometheus-client)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from core.settings import SettingError

__all__ = ["metrics_port", "serve_metrics"]

logger = logging.getLogger(__name__)

_SETTING = "--metrics-port / METRICS_PORT"


def metrics_port(configured: int, default: int) -> int | None:
    """The port to serve on: the configured one, the component's default for 0, None for -1."""
    if configured < 0:
        return None
    return configured or default


def serve_metrics(registry: CollectorRegistry, port: int | None, component: str) -> str | None:
    """Serve `registry` at http://0.0.0.0:<port>/metrics from a daemon thread; return its URL.

    A port that is taken fails at start, naming the setting."""
    if port is None:
        return None
    try:
        start_http_server(port, registry=registry)
    except OSError as e:
        raise SettingError(f"{component}: cannot serve metrics on port {port} ({_SETTING}): {e}") from e
    url = f"http://127.0.0.1:{port}/metrics"
    logger.info("%s: Prometheus metrics on %s", component, url)
    return url
