"""The live dashboard of `make run`, in a real headless browser: what the page shows equals
what PostgreSQL holds. DASHBOARD_SCREENSHOT=<path> keeps a screenshot (README's)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import psycopg2
import pytest

from tests.embedded_run import embedded_run, wait_until

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TICKETS = 300
TIMEOUT_SECONDS = 300
COUNTS = "SELECT (SELECT count(*) FROM tickets), (SELECT sum(ticket_count) FROM tickets_aggregation)"


def table(driver, element_id: str) -> dict[str, int]:
    """The rows of a two-column table of the page: name -> count."""
    from selenium.webdriver.common.by import By

    rows = [
        r.text.rsplit(maxsplit=1) for r in driver.find_elements(By.CSS_SELECTOR, f"#{element_id} tbody tr")
    ]
    return {name: int(count) for name, count in rows if count.isdigit()}


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed"
    " (.ci/run installs them: apt-get install chromium chromium-driver)",
)
def test_the_dashboard_shows_what_postgresql_holds(tmp_path: Path) -> None:
    """`make run` with PRODUCER_COUNT=300 prints the dashboard's URL; once the tables hold the
    300 tickets, the page shows 300 stored, the counts per type and per team of PostgreSQL,
    its latest tickets, no lag, and the latency percentiles."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with embedded_run(tmp_path, PRODUCER_COUNT=str(TICKETS), PRODUCER_RATE="100") as run:
        url = re.search(r"dashboard\s+(http://\S+)", run.banner).group(1)
        postgres = f"postgresql://tickets@127.0.0.1:{run.postgres_port}/tickets"

        def query(statement: str) -> list[tuple]:
            with psycopg2.connect(postgres, password=run.postgres_password()) as conn, conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall()

        wait_until(
            "all tickets stored and counted", lambda: query(COUNTS) == [(TICKETS, TICKETS)], TIMEOUT_SECONDS
        )
        options = Options()
        for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1200"):
            options.add_argument(argument)
        options.binary_location = CHROMIUM
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            check_page(driver, url, query)
        finally:
            driver.quit()


def check_page(driver, url: str, query) -> None:
    """The page's figures equal the tables' (all tickets stored and counted)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_until("the page's count", lambda: driver.find_element(By.ID, "stored").text == f"{TICKETS:,}", 60)
    wait_until("no lag", lambda: driver.find_element(By.ID, "lag").text == "enrichment 0, aggregation 0", 60)
    types = dict(query("SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0"))
    assert table(driver, "types") == types
    assert table(driver, "teams") == dict(query("SELECT team, count(*) FROM tickets GROUP BY team"))
    shown = {r.text.split()[0] for r in driver.find_elements(By.CSS_SELECTOR, "#latest tbody tr")}
    assert len(shown) == 10 and shown <= {row[0] for row in query("SELECT ticket_id::text FROM tickets")}
    assert re.fullmatch(r"[\d.]+ s / [\d.]+ s / [\d.]+ s", driver.find_element(By.ID, "latency").text)
    links = {a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")}
    assert {"http://127.0.0.1:4040/", "http://127.0.0.1:4041/"} <= links
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        driver.save_screenshot(os.environ["DASHBOARD_SCREENSHOT"])
