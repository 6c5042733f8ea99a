"""The log format of every program of the pipeline."""

from __future__ import annotations

import logging

__all__ = ["LOG_FORMAT", "configure_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped logs on stderr, in LOG_FORMAT."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
