"""The live dashboard of `make run`, in a real headless browser: what the page shows equals
what PostgreSQL holds. DASHBOARD_SCREENSHOT=<path> keeps a screenshot (README's)."""

from __future__ import annotations

import os
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from tests.dashboard.page import BROWSER_MISSING, basic_auth, check_page, headless_chromium
from tests.embedded_run import embedded_run, wait_until

pytestmark = pytest.mark.integration

TICKETS = 300
TIMEOUT_SECONDS = 300
COUNTS = "SELECT (SELECT count(*) FROM tickets), (SELECT sum(ticket_count) FROM tickets_aggregation)"


@pytest.mark.skipif(BROWSER_MISSING is not None, reason=str(BROWSER_MISSING))
def test_the_dashboard_shows_what_postgresql_holds(tmp_path: Path) -> None:
    """`make run` with PRODUCER_COUNT=300 and a dashboard login prints the dashboard's URL;
    without the login the page answers 401; once the tables hold the 300 tickets, a browser
    that sends it sees 300 stored, the counts per type and per team of PostgreSQL, its latest
    tickets, no lag, and the latency percentiles (the page's live updates pass the login too)."""
    login = {"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": secrets.token_urlsafe(16)}
    with embedded_run(tmp_path, PRODUCER_COUNT=str(TICKETS), PRODUCER_RATE="100", **login) as run:
        url = re.search(r"dashboard\s+(http://\S+)", run.banner).group(1)
        postgres = f"postgresql://tickets@127.0.0.1:{run.postgres_port}/tickets"

        def query(statement: str) -> list[tuple]:
            with psycopg2.connect(postgres, password=run.postgres_password()) as conn, conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall()

        wait_until(
            "all tickets stored and counted", lambda: query(COUNTS) == [(TICKETS, TICKETS)], TIMEOUT_SECONDS
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        with headless_chromium(basic_auth(login["DASHBOARD_USER"], login["DASHBOARD_PASSWORD"])) as driver:
            spark_uis = re.search(r"Spark UIs\s+(http://\S+) \(enrichment\)\s+(http://\S+)", run.banner)
            check_page(driver, url, query, {f"{spark_uis[1]}/", f"{spark_uis[2]}/"})
            if os.environ.get("DASHBOARD_SCREENSHOT"):
                driver.save_screenshot(os.environ["DASHBOARD_SCREENSHOT"])
