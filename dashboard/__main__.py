"""The live dashboard of the pipeline: `python -m dashboard` (see README, Supervision)."""

from __future__ import annotations

import logging
import os
import sys

from nicegui import ui

from core.logs import configure_logging
from core.settings import SettingError
from dashboard.app import build_page
from dashboard.settings import load_settings

logger = logging.getLogger("dashboard")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:  # as core.settings.load_or_exit, with the password and the authentication rule
        settings = load_settings(argv)
    except SettingError as e:
        logger.error("%s", e)
        return 2
    # NiceGUI switches to its screen-test mode when it sees pytest's variable, which a
    # `make run` started by a test passes down: this process is never a test itself.
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    build_page(settings)
    logger.info(
        "dashboard on http://127.0.0.1:%d (bound to %s, %s)",
        settings.port,
        settings.bind_host,
        f"basic authentication as {settings.user}" if settings.authenticates else "no authentication",
    )
    ui.run(
        host=settings.bind_host,
        port=settings.port,
        reload=False,
        show=False,
        title="ticket-pipeline",
        dark=False,
    )
    return 0


if __name__ in {"__main__", "__mp_main__"}:
    sys.exit(main())
