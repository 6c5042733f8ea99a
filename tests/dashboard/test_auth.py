"""A running `python -m dashboard` with a user and password: every page asks for them (401 and a
Basic challenge), the right ones open it, and /healthz, the probes' path, answers without."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from dashboard.app import HEALTH_PATH
from dashboard.settings import PASSWORD_ENV
from scripts.embedded.ports import free_port
from tests.dashboard.page import basic_auth, served_text
from tests.embedded_run import wait_until

pytestmark = pytest.mark.integration

USER, PASSWORD = "ops", "correct-horse-battery-staple"


def _status(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message]:
    """The HTTP status of a GET, and its headers (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


@pytest.fixture
def dashboard(kafka_env, topic, reader_url, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A dashboard process with a user and password, reading a real database as the reader
    role (its password from the session's PGPASSFILE): its base URL and its log file."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PYTEST_CURRENT_TEST")}
    env.update(
        **kafka_env,
        DATABASE_URL=reader_url,
        TICKETS_TOPIC=topic,
        DASHBOARD_PORT=str(port),
        DASHBOARD_REFRESH_SECONDS="0.5",
        BIND_HOST="127.0.0.1",
        DASHBOARD_USER=USER,
        **{PASSWORD_ENV: PASSWORD},
    )
    log = tmp_path / "dashboard.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dashboard"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return _status(url + HEALTH_PATH)[0] == 200
        except OSError:
            return False

    try:
        wait_until("the dashboard's health check", healthy, 60)
        yield url, log
    finally:
        process.terminate()
        process.wait(30)


def test_every_page_but_the_health_check_asks_for_the_credentials(dashboard) -> None:
    """Without credentials, or with a wrong password or user, / and NiceGUI's own paths answer
    401 with a Basic challenge; with them, / answers 200 and its figures are read (the status
    line reaches "updated"); /healthz answers 200 without any. The log never holds the password."""
    url, log = dashboard
    for path in ("/", "/_nicegui_ws/socket.io/?EIO=4&transport=polling", "/docs"):
        status, headers = _status(url + path)
        assert status == 401, path
        assert headers.get("WWW-Authenticate", "").startswith("Basic realm="), path
    for user, password in ((USER, "wrong"), ("someone", PASSWORD), (USER, PASSWORD + "x")):
        assert _status(url + "/", basic_auth(user, password))[0] == 401, (user, password)
    assert _status(url + "/", {"Authorization": "Basic not-base64!"})[0] == 401
    assert _status(url + HEALTH_PATH)[0] == 200
    assert _status(url + "/", basic_auth(USER, PASSWORD))[0] == 200
    page = url + "/"
    shown = wait_until(
        "a first read",
        lambda: (served_text(page, "status", basic_auth(USER, PASSWORD)) or "").startswith("updated "),
        60,
    )
    assert shown
    assert served_text(page, "stored", basic_auth(USER, PASSWORD)) == "0"
    assert PASSWORD not in log.read_text()
