"""The jobs' Spark session keeps what spark-submit configured, as on Kubernetes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT = """
from jobs.settings import EnrichmentSettings
from jobs.spark_session import build_session
from core.settings import load
spark = build_session("probe", load(EnrichmentSettings, []), 0)
print("MASTER=" + spark.sparkContext.master)
print("SHUFFLE=" + spark.conf.get("spark.sql.shuffle.partitions"))
spark.stop()
"""


def test_should_keep_the_master_and_settings_that_spark_submit_passed(tmp_path: Path) -> None:
    """Under spark-submit (the operator's driver pod does the same with master k8s://...), the
    session runs on the submitted master and keeps a submitted setting, instead of the jobs'
    defaults (SPARK_MASTER local[*]). Found on a real cluster: the drivers ran every task
    themselves, with no executor."""
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
         "--conf", "spark.sql.shuffle.partitions=3", "--conf", "spark.ui.enabled=false", str(script)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MASTER=local[1]" in done.stdout, done.stdout
    assert "SHUFFLE=3" in done.stdout, done.stdout
