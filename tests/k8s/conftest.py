"""Fixtures of the offline Kubernetes checks: rendered charts and the Spark operator's chart.

Without helm on PATH every chart check fails (never skips) with render.HelmNotFoundError, whose
message says to run `make test` or `make helm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .render import render_chart
from .validation import MissingOperatorChart, operator_chart_dir

# Non-default values: a bigger topic, three producers, other resources, an existing Secret with
# its own keys, another writer role.
CUSTOM_VALUES: dict[str, Any] = {
    "redpanda": {
        "topic": {"partitions": 12},
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "3Gi"},
        },
        "memory": "2G",
    },
    "producer": {
        "replicas": 3,
        "ratePerReplica": 250,
        "resources": {
            "requests": {"cpu": "200m", "memory": "192Mi"},
            "limits": {"cpu": "1", "memory": "384Mi"},
        },
    },
    "postgresql": {
        "auth": {
            "writerUsername": "pipeline_writer",
            "existingSecret": "pipeline-db",
            "secretKeys": {"userPasswordKey": "db-password", "writerPasswordKey": "db-writer-password"},
        }
    },
    "spark": {
        "maxOffsetsPerTrigger": 2000000,
        "enrichment": {
            "executor": {"instances": 4, "cores": 2, "coreLimit": "2", "memory": "2g"},
            "driver": {"memory": "1g"},
        },
        "aggregation": {"executor": {"instances": 2}},
    },
}

VALUE_SETS = {"default values": None, "custom values": CUSTOM_VALUES}


@pytest.fixture(scope="session")
def operator_chart() -> Path:
    """Return the fetched Spark operator chart; fail (never skip) with how to fetch it."""
    try:
        return operator_chart_dir()
    except MissingOperatorChart as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(params=list(VALUE_SETS), scope="session")
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The chart rendered with the default values, then with the custom ones."""
    return render_chart(VALUE_SETS[request.param])


@pytest.fixture(scope="session")
def default_objects() -> list[dict[str, Any]]:
    """The chart rendered with its default values."""
    return render_chart()


@pytest.fixture(scope="session")
def custom_objects() -> list[dict[str, Any]]:
    """The chart rendered with CUSTOM_VALUES."""
    return render_chart(CUSTOM_VALUES)
