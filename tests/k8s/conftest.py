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

# Non-default values: a bigger topic, three producers, other resources and local storage, an
# existing Secret with its own keys (the dashboard's password among them), other writer and reader
# roles, another dashboard user, the monitoring objects.
CUSTOM_VALUES: dict[str, Any] = {
    "topic": {"partitions": 12},
    "redpanda": {
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "256Mi"},
            "limits": {"cpu": "2", "memory": "3Gi", "ephemeral-storage": "1Gi"},
        },
        "memory": "2G",
    },
    "producer": {
        "replicas": 3,
        "ratePerReplica": 250,
        "resources": {
            "requests": {"cpu": "200m", "memory": "192Mi", "ephemeral-storage": "128Mi"},
            "limits": {"cpu": "1", "memory": "384Mi", "ephemeral-storage": "512Mi"},
        },
        "emptyDirSizeLimit": "256Mi",
    },
    "postgresql": {
        "auth": {
            "writerUsername": "pipeline_writer",
            "readerUsername": "pipeline_reader",
            "existingSecret": "pipeline-db",
            "secretKeys": {
                "userPasswordKey": "db-password",
                "writerPasswordKey": "db-writer-password",
                "readerPasswordKey": "db-reader-password",
                "adminPasswordKey": "db-admin-password",
            },
        },
        "tls": {"existingSecret": "pipeline-db-tls", "caConfigMap": "pipeline-db-ca", "caKey": "root.pem"},
    },
    "dashboard": {
        "auth": {
            "username": "ops",
            "existingSecret": "pipeline-db",
            "secretKeys": {"passwordKey": "dashboard-login"},
        }
    },
    "spark": {
        "maxOffsetsPerTrigger": 2000000,
        "enrichment": {
            "executor": {
                "instances": 4,
                "cores": 2,
                "coreLimit": "2",
                "memory": "2g",
                "localDirSizeLimit": "4Gi",
                "ephemeralStorageRequest": "1Gi",
                "ephemeralStorageLimit": "5Gi",
            },
            "driver": {"memory": "1g"},
        },
        "aggregation": {"executor": {"instances": 2}},
    },
    "monitoring": {
        "podMonitor": {"enable": True, "labels": {"release": "kube-prometheus-stack"}, "interval": "30s"},
        "prometheusRule": {"enable": True, "labels": {"release": "kube-prometheus-stack"}},
        "grafanaDashboard": {"enable": True, "labels": {"grafana_dashboard": "1"}},
    },
}

# The ServiceMonitors instead of the PodMonitors (the chart refuses both at once).
SERVICE_MONITOR_VALUES: dict[str, Any] = {
    "monitoring": {
        "serviceMonitor": {"enable": True, "labels": {"release": "kube-prometheus-stack"}, "interval": "30s"},
        "prometheusRule": {"enable": True, "labels": {"release": "kube-prometheus-stack"}},
    },
}

# A Kafka-compatible broker of the user's instead of Redpanda: one outside the cluster, one a
# Service of another namespace (neither is rendered: the wiring checks must accept both).
EXTERNAL_BOOTSTRAP_SERVERS = "kafka.example.internal:9092,kafka-2.streaming.svc.cluster.local:9092"
EXTERNAL_KAFKA_VALUES: dict[str, Any] = {
    "externalKafka": {"bootstrapServers": EXTERNAL_BOOTSTRAP_SERVERS},
    "console": {"enable": True},
}

# An AWS MSK-like broker: SASL_SSL with SCRAM, the password in a Secret, a CA of a Secret.
SECURE_KAFKA_VALUES: dict[str, Any] = {
    "externalKafka": {
        "bootstrapServers": "b-1.msk.example.internal:9096,b-2.msk.example.internal:9096",
        "tls": {"enabled": True, "caSecret": "kafka-ca", "caKey": "ca.pem"},
        "sasl": {
            "enabled": True,
            "mechanism": "SCRAM-SHA-512",
            "username": "ticket-pipeline",
            "existingSecret": "kafka-credentials",
            "passwordKey": "kafka-password",
        },
    },
    "console": {"enable": True},
}

VALUE_SETS = {
    "default values": None,
    "custom values": CUSTOM_VALUES,
    "external kafka": EXTERNAL_KAFKA_VALUES,
    "external kafka over SASL_SSL": SECURE_KAFKA_VALUES,
    "service monitors": SERVICE_MONITOR_VALUES,
}


def external_bootstrap_servers(values: dict[str, Any] | None) -> list[str]:
    """The host:port entries of externalKafka.bootstrapServers in ``values`` (none by default)."""
    servers = ((values or {}).get("externalKafka") or {}).get("bootstrapServers", "")
    return servers.split(",") if servers else []


@pytest.fixture(scope="session")
def operator_chart() -> Path:
    """Return the fetched Spark operator chart; fail (never skip) with how to fetch it."""
    try:
        return operator_chart_dir()
    except MissingOperatorChart as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(params=list(VALUE_SETS), scope="session")
def values_under_test(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """Each value set in turn: the defaults (None), the custom values, an external broker."""
    return VALUE_SETS[request.param]


@pytest.fixture(scope="session")
def rendered(values_under_test: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The chart rendered with each value set of VALUE_SETS."""
    return render_chart(values_under_test)


@pytest.fixture(scope="session")
def default_objects() -> list[dict[str, Any]]:
    """The chart rendered with its default values."""
    return render_chart()


@pytest.fixture(scope="session")
def custom_objects() -> list[dict[str, Any]]:
    """The chart rendered with CUSTOM_VALUES."""
    return render_chart(CUSTOM_VALUES)


@pytest.fixture(scope="session")
def service_monitor_objects() -> list[dict[str, Any]]:
    """The chart rendered with SERVICE_MONITOR_VALUES."""
    return render_chart(SERVICE_MONITOR_VALUES)


@pytest.fixture(scope="session")
def external_objects() -> list[dict[str, Any]]:
    """The chart rendered with EXTERNAL_KAFKA_VALUES."""
    return render_chart(EXTERNAL_KAFKA_VALUES)
