"""The live dashboard's page in Debian's headless chromium (selenium): open it, and check that
its figures converge to what PostgreSQL holds. Shared by the `make run` test and the cluster test."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import urllib.request
from collections.abc import Callable, Iterator

from tests.embedded_run import wait_until

__all__ = [
    "BROWSER_MISSING",
    "Query",
    "basic_auth",
    "check_page",
    "headless_chromium",
    "served_text",
    "table",
]

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
BROWSER_MISSING = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "Debian's chromium and chromium-driver are not installed"
    " (.ci/run installs them: apt-get install chromium chromium-driver)"
)
# A query of the pipeline's database: statement -> rows.
Query = Callable[[str], list[tuple]]
# How long the page may take to show what the tables hold (it refreshes every 2 s by default).
CONVERGE_SECONDS = 60


@contextlib.contextmanager
def headless_chromium(headers: dict[str, str] | None = None) -> Iterator:
    """A selenium driver of a headless chromium, quit on exit; every request it makes carries
    `headers` (basic_auth's, for a page that asks for a login)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,1200"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if headers:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})
    try:
        yield driver
    finally:
        driver.quit()


def table(driver, element_id: str) -> dict[str, int]:
    """The rows of a two-column table of the page: name -> count."""
    from selenium.webdriver.common.by import By

    rows = [
        r.text.rsplit(maxsplit=1) for r in driver.find_elements(By.CSS_SELECTOR, f"#{element_id} tbody tr")
    ]
    return {name: int(count) for name, count in rows if count.isdigit()}


def check_page(driver, url: str, query: Query, spark_ui_links: set[str]) -> None:
    """Load the page; once the pipeline is still, its figures equal the tables': the stored
    count, no lag, the counts per type and per team; its latest tickets are in `tickets`, it
    shows the latency percentiles and links to the Spark UIs."""
    from selenium.webdriver.common.by import By

    def text(element_id: str) -> str:
        return driver.find_element(By.ID, element_id).text

    driver.get(url)
    stored = query("SELECT count(*) FROM tickets")[0][0]
    wait_until(f"the page's count, {stored:,}", lambda: text("stored") == f"{stored:,}", CONVERGE_SECONDS)
    wait_until("no lag", lambda: text("lag") == "enrichment 0, aggregation 0", CONVERGE_SECONDS)
    types = dict(query("SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0"))
    wait_until(f"the counts per type, {types}", lambda: table(driver, "types") == types, CONVERGE_SECONDS)
    teams = dict(query("SELECT team, count(*) FROM tickets GROUP BY team"))
    wait_until(f"the counts per team, {teams}", lambda: table(driver, "teams") == teams, CONVERGE_SECONDS)
    shown = {r.text.split()[0] for r in driver.find_elements(By.CSS_SELECTOR, "#latest tbody tr")}
    assert len(shown) == 10 and shown <= {row[0] for row in query("SELECT ticket_id::text FROM tickets")}
    assert re.fullmatch(r"[\d.]+ s / [\d.]+ s / [\d.]+ s", text("latency"))
    links = {a.get_attribute("href") for a in driver.find_elements(By.TAG_NAME, "a")}
    assert spark_ui_links <= links, links


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic authentication."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def served_text(url: str, element_id: str, headers: dict[str, str] | None = None) -> str | None:
    """The text the page at `url` serves for the element with that id, without a browser:
    NiceGUI puts each element, with its text, in the page as JSON. None where it has none."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
        page = answer.read().decode()
    found = re.search(
        r'"text":("(?:[^"\\]|\\.)*")[^{}]*"props":\{"id":"' + re.escape(element_id) + r'"\}', page
    )
    return json.loads(found[1]) if found else None
