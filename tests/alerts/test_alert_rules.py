"""The alert rules are valid, and each one fires in a case and stays silent in another
(`promtool`, built from the Prometheus Go module by make)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import REPO_ROOT

RULES = REPO_ROOT / "charts" / "files" / "alerts.rules.yaml"
RULE_TESTS = Path(__file__).with_name("alerts.test.yaml")
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not on PATH: `make test` builds it into .local/bin (make promtool)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_the_rule_file_passes_promtool_check():
    run = promtool("check", "rules", str(RULES))
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_rule_tests_pass():
    run = promtool("test", "rules", str(RULE_TESTS))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_rule_is_tested_firing_and_silent():
    """Each alert has a case where it fires, and one where it stays silent: an empty
    expectation, or an input series of a job that is not among the expected alerts."""
    alerts = {
        rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    }
    fires, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        jobs_in_input = set(re.findall(r'job_name="([^"]+)"', str(case["input_series"])))
        for check in case["alert_rule_test"]:
            expected = check.get("exp_alerts") or []
            if expected:
                fires.add(check["alertname"])
            jobs_firing = {alert["exp_labels"].get("job_name") for alert in expected}
            if not expected or jobs_in_input - jobs_firing:
                silent.add(check["alertname"])
    assert fires == alerts
    assert silent == alerts
