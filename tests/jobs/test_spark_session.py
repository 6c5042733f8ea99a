"""The jobs' Spark session keeps what spark-submit configured, as on Kubernetes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from scripts.embedded.ports import free_port

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


METRICS_SCRIPT = """
import sys, urllib.request
from jobs.settings import EnrichmentSettings
from jobs.spark_session import build_session
from core.settings import load
port = int(sys.argv[1])
spark = build_session("probe", load(EnrichmentSettings, []), port)
spark.range(10).count()
for path in ("/metrics/prometheus", "/metrics/executors/prometheus"):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).read().decode()
    print(path, sum(line.startswith("metrics_") for line in body.splitlines()))
spark.stop()
"""


def test_should_serve_sparks_own_metrics_on_the_ui_port_under_spark_submit(tmp_path: Path) -> None:
    """Started by spark-submit as on Kubernetes, the session serves Spark's metrics in
    Prometheus format on its UI port: the driver's and the executors'."""
    script, port = tmp_path / "probe.py", free_port()
    script.write_text(METRICS_SCRIPT)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", str(script), str(port)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    served = dict(line.split() for line in done.stdout.splitlines() if line.startswith("/metrics"))
    assert set(served) == {"/metrics/prometheus", "/metrics/executors/prometheus"}, done.stdout
    assert all(int(count) > 0 for count in served.values()), served
