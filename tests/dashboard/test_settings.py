"""The dashboard's authentication rule: off by default only on loopback; a user and a password
(from DASHBOARD_PASSWORD only) go together; a wrong combination stops the program at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.settings import REPO_ROOT, SettingError, setting_fields
from dashboard.settings import PASSWORD_ENV, DashboardSettings, load_settings

NAMES = ("BIND_HOST", "DASHBOARD_USER", "DASHBOARD_PASSWORD")


def test_the_page_asks_for_no_credentials_by_default_on_loopback():
    """Loopback (the default, 127.0.0.1, ::1, localhost) without a user and password starts
    without authentication."""
    for host in (None, "127.0.0.1", "::1", "localhost"):
        settings = load_settings([], {} if host is None else {"BIND_HOST": host})
        assert not settings.authenticates, host


def test_a_user_and_the_password_of_its_env_var_turn_authentication_on_anywhere():
    """--user (or DASHBOARD_USER) with DASHBOARD_PASSWORD authenticates, on 0.0.0.0 as on
    loopback; the password stays out of the settings' repr, which the logs may print."""
    for host in ("0.0.0.0", "127.0.0.1"):
        settings = load_settings(["--user", "ops"], {"BIND_HOST": host, PASSWORD_ENV: "s3cret-value"})
        assert (settings.user, settings.password, settings.authenticates) == ("ops", "s3cret-value", True)
        assert "s3cret-value" not in repr(settings)


def test_the_password_is_never_a_flag():
    """No setting of the dashboard reads DASHBOARD_PASSWORD, so no flag exists for it; argparse
    refuses --password (exit status 2)."""
    assert PASSWORD_ENV not in {f.metadata["env"] for f in setting_fields(DashboardSettings)}
    with pytest.raises(SystemExit) as exit_info:
        load_settings(["--password", "x"], {})
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    "environ",
    [
        {"BIND_HOST": "0.0.0.0"},
        {"BIND_HOST": "10.1.2.3", "DASHBOARD_USER": "ops"},
        {"BIND_HOST": "::", PASSWORD_ENV: "x"},
        {"DASHBOARD_USER": "ops"},
        {PASSWORD_ENV: "x"},
    ],
    ids=[
        "0.0.0.0 without credentials",
        "a user alone",
        "a password alone",
        "a user alone on loopback",
        "a password alone on loopback",
    ],
)
def test_a_missing_credential_is_a_setting_error_naming_the_settings(environ):
    """A non-loopback BIND_HOST without a user and password, or one of them without the other,
    is a SettingError that names what to set."""
    with pytest.raises(SettingError) as error:
        load_settings([], environ)
    message = str(error.value)
    assert "DASHBOARD_USER" in message and PASSWORD_ENV in message
    if "BIND_HOST" in environ and not ("DASHBOARD_USER" in environ or PASSWORD_ENV in environ):
        assert "BIND_HOST" in message


def test_python_m_dashboard_exits_2_on_0_0_0_0_without_credentials():
    """`python -m dashboard` with BIND_HOST=0.0.0.0 and no credentials stops at start, before
    listening, with status 2 and a message naming BIND_HOST, DASHBOARD_USER and
    DASHBOARD_PASSWORD; with a user but no password too, and the message shows no password."""
    env = {k: v for k, v in os.environ.items() if k not in (*NAMES, "PYTEST_CURRENT_TEST")}
    for extra, named in (({}, NAMES), ({"DASHBOARD_USER": "ops"}, NAMES[1:])):
        done = subprocess.run(
            [sys.executable, "-m", "dashboard", "--port", "1"],
            env={**env, "BIND_HOST": "0.0.0.0", **extra},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr[-2000:]
        output = done.stdout + done.stderr
        for name in named:
            assert name in output, (name, output[-2000:])
