"""Settings: flags beat env vars beat defaults; bad values name the setting; docs/operations.md lists all."""

from __future__ import annotations

import re

import pytest
from psycopg2.extensions import parse_dsn

from core.migrate import MigrateSettings
from core.settings import REPO_ROOT, SettingError, load, mask_url, setting_fields
from dashboard.settings import DashboardSettings
from jobs.settings import AggregationSettings, EnrichmentSettings
from producer.settings import ProducerSettings, TopicSettings
from scripts.bench.__main__ import BenchSettings
from scripts.embedded.run import RunSettings

ALL_SETTINGS = (
    ProducerSettings,
    TopicSettings,
    EnrichmentSettings,
    AggregationSettings,
    MigrateSettings,
    RunSettings,
    BenchSettings,
    DashboardSettings,
)


def test_a_flag_beats_the_env_var_which_beats_the_default():
    """--rate wins over PRODUCER_RATE, which wins over the default."""
    assert load(ProducerSettings, [], environ={}).rate == 20.0
    assert load(ProducerSettings, [], environ={"PRODUCER_RATE": "7"}).rate == 7.0
    assert load(ProducerSettings, ["--rate", "3"], environ={"PRODUCER_RATE": "7"}).rate == 3.0


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--rate", "-1"], {}, "--rate / PRODUCER_RATE"),
        ([], {"PRODUCER_RATE": "fast"}, "--rate / PRODUCER_RATE"),
        (["--partitions", "0"], {}, "--partitions / TOPIC_PARTITIONS"),
        ([], {"KAFKA_BOOTSTRAP_SERVERS": " "}, "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_a_wrong_value_fails_with_a_message_naming_the_setting(argv, environ, named):
    """The error names both the flag and the env var, and the bad value."""
    with pytest.raises(SettingError, match=re.escape(named)):
        load(ProducerSettings, argv, environ=environ)


def test_a_job_rejects_an_unknown_starting_offset_and_a_non_postgres_url():
    """Enum-like and URL settings are checked at start."""
    with pytest.raises(SettingError, match="STARTING_OFFSETS"):
        load(EnrichmentSettings, ["--starting-offsets", "middle"], environ={})
    with pytest.raises(SettingError, match="DATABASE_URL"):
        load(EnrichmentSettings, [], environ={"DATABASE_URL": "mysql://x@y/z"})


def test_an_unknown_flag_exits_with_usage():
    """argparse refuses flags it does not know (exit status 2)."""
    with pytest.raises(SystemExit) as exit_info:
        load(ProducerSettings, ["--rat", "3"], environ={})
    assert exit_info.value.code == 2


def test_passwords_are_masked_when_printed():
    """A URL with a password is printed with *** instead."""
    assert mask_url("postgresql://u:s3cret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert mask_url("postgresql://u@h/d") == "postgresql://u@h/d"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u@h/d?password=s3cret", "postgresql://u@h/d?password=***"),
        (
            "postgresql://u@h/d?sslmode=require&password=s3cret&application_name=x",
            "postgresql://u@h/d?sslmode=require&password=***&application_name=x",
        ),
        ("postgresql://u:one@h/d?password=two", "postgresql://u:***@h/d?password=***"),
        ("postgresql://u@h/d?%70assword=s3cret", "postgresql://u@h/d?%70assword=***"),
        ("postgresql://u@h/d?password=s3#cret", "postgresql://u@h/d?password=***"),
        ("postgresql://u@h/d?application_name=password", "postgresql://u@h/d?application_name=password"),
    ],
)
def test_a_password_given_as_a_query_parameter_is_masked_too(url, masked):
    """libpq takes `password` as a query parameter (its name percent-encoded or not, the rest of
    the URL after it included, since a URL has no fragment for libpq): that is masked as well,
    and nothing else is. libpq itself reads no password but *** from the masked URL."""
    assert mask_url(url) == masked
    assert parse_dsn(masked).get("password", "***") == "***"


def test_the_docs_list_every_setting_with_its_flag_and_default():
    """Each setting has a table row in docs/operations.md: | `ENV` | `--flag` | `default` | ..."""
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z_]+)` \|.*$", doc, re.M)}
    for cls in ALL_SETTINGS:
        for field in setting_fields(cls):
            env, flag = field.metadata["env"], field.metadata["flag"]
            assert env in rows, f"docs/operations.md has no row for {env}"
            assert f"`{flag}`" in rows[env], f"docs/operations.md row of {env} lacks {flag}"
            default = field.default if not str(field.default).startswith(str(REPO_ROOT)) else None
            if default is not None and default != "":
                shown = f"{default:g}" if isinstance(default, float) else str(default)
                assert f"`{shown}`" in rows[env], f"docs/operations.md row of {env} lacks default {shown}"
