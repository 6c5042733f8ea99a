"""The offline Kubernetes checks need nothing outside the clone: no ../shared beside it.

A user clones the project and nothing else. The Spark operator's CRD and the prometheus-operator's
come from their pinned Go modules, fetched by the clone's own Makefile.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.clone import copy_checkout, share_installs

from .validation import MONITORING_CRDS_ENV, OPERATOR_CHART_ENV

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CHECKS = ("tests/k8s/test_validation.py", "tests/k8s/test_versions.py")


def test_should_pass_the_crd_checks_in_a_clone_with_no_shared_folder_beside_it(tmp_path: Path) -> None:
    """`make test` of the CRD and version checks, in a copy of the checkout with no ../shared
    (and nothing pointing at one): the clone fetches the pinned chart itself, and all pass."""
    clone = copy_checkout(tmp_path / "alone" / "ticket-pipeline")
    assert not (clone.parent / "shared").exists()
    make_flags = share_installs(clone)
    # A fresh make, as a user's: not a sub-make of the `make test` running this test.
    inherited = {OPERATOR_CHART_ENV, MONITORING_CRDS_ENV, "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in inherited and "SHARED" not in k}
    checks = subprocess.run(
        ["make", *make_flags, "test", f"PYTEST_ARGS=-q -p no:cacheprovider {' '.join(CHECKS)}"],
        cwd=clone, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert checks.returncode == 0, checks.stdout[-4000:] + checks.stderr[-2000:]
    summary = checks.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ skipped)? in .*", summary), summary
