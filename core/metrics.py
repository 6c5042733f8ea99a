"""Serves a component's Prometheus metrics over HTTP (prometheus-client)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

from core.settings import SettingError

__all__ = ["metrics_port", "serve_metrics"]

logger = logging.getLogger(__name__)

_SETTING = "--metrics-port / METRICS_PORT"
_HOST_SETTING = "--bind-host / BIND_HOST"


def metrics_port(configured: int, default: int) -> int | None:
    """The port to serve on: the configured one, the component's default for 0, None for -1."""
    if configured < 0:
        return None
    return configured or default


def serve_metrics(registry: CollectorRegistry, port: int | None, component: str, host: str) -> str | None:
    """Serve `registry` at http://<host>:<port>/metrics from a daemon thread; return its URL.

    A port that is taken fails at start, naming the setting."""
    if port is None:
        return None
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise SettingError(
            f"{component}: cannot serve metrics on {host}:{port} ({_SETTING}, {_HOST_SETTING}): {e}"
        ) from e
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/metrics"
    logger.info("%s: Prometheus metrics on %s (bound to %s)", component, url, host)
    return url
