"""The live dashboard of the pipeline: `python -m dashboard` (see README, Supervision)."""

from __future__ import annotations

import logging
import os
import sys

from nicegui import ui

from core.logs import configure_logging
from core.settings import load_or_exit
from dashboard.app import build_page
from dashboard.settings import DashboardSettings

logger = logging.getLogger("dashboard")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_or_exit(DashboardSettings, argv, "python -m dashboard", logger)
    # NiceGUI switches to its screen-test mode when it sees pytest's variable, which a
    # `make run` started by a test passes down: this process is never a test itself.
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    build_page(settings)
    logger.info("dashboard on http://127.0.0.1:%d", settings.port)
    ui.run(host="0.0.0.0", port=settings.port, reload=False, show=False, title="ticket-pipeline", dark=False)
    return 0


if __name__ in {"__main__", "__mp_main__"}:
    sys.exit(main())
