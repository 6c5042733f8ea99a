"""Every rendered object validates strictly: core kinds against the Kubernetes API schemas of
the kind node's version, SparkApplications against the Spark operator's CRD."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from .render import CHART_DIR, KUBE_VERSION, REPO_ROOT, find, of_kind, render_chart
from .validation import (
    CRD_SHA256,
    MONITORING_KINDS,
    OPERATOR_CHART_ENV,
    core_schema_version,
    crd_sha256,
    make_variable,
    monitoring_crd_dir,
    monitoring_errors,
    spark_application_errors,
    strict_crd_schema,
    validate_core_object,
)

CUSTOM_KINDS = {"SparkApplication", *MONITORING_KINDS}


def core_errors(objects: list[dict]) -> list[str]:
    """Return the strict validation errors of every core object, as 'Kind/name: path: message'."""
    errors = []
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            validate_core_object(obj)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}")
    return errors


def test_should_use_the_kubernetes_schemas_of_the_kind_node_version() -> None:
    """The core schemas are the newest kubernetes-validate bundles at or below the kind node."""
    major_minor = ".".join(KUBE_VERSION.split(".")[:2])
    assert core_schema_version().startswith(f"{major_minor}.")


def test_should_validate_every_core_object_strictly(rendered: list[dict]) -> None:
    """Each Deployment, StatefulSet, Job, Service, Secret, ConfigMap, PVC and Pod is valid."""
    kinds = {obj["kind"] for obj in rendered} - CUSTOM_KINDS
    assert {"Deployment", "StatefulSet", "Job", "Service", "ConfigMap", "Pod"} <= kinds
    assert core_errors(rendered) == []


def test_should_know_a_schema_for_every_rendered_kind(rendered: list[dict]) -> None:
    """No rendered kind escapes validation: the custom resources are SparkApplications and the
    monitoring objects, each checked against its CRD below."""
    unknown = set()
    for obj in rendered:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            validate_core_object(obj)
        except kubernetes_validate.SchemaNotFoundError:
            unknown.add(obj["kind"])
        except kubernetes_validate.ValidationError:
            pass  # a schema exists: its errors are the strict validation test's business
    assert unknown == set()


def test_should_use_the_crd_of_the_pinned_spark_operator_module(operator_chart: Path) -> None:
    """The CRD is kubeflow/spark-operator v2.5.2's, byte for byte, from inside the clone: its
    chart says 2.5.2, and the fetch recorded the Go module and the go.sum hash the Makefile pins."""
    assert crd_sha256() == CRD_SHA256
    assert operator_chart.resolve().is_relative_to(REPO_ROOT.resolve()) or OPERATOR_CHART_ENV in os.environ
    chart = yaml.safe_load((operator_chart / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["version"] == make_variable("SPARK_OPERATOR_VERSION") == "2.5.2"
    source = (operator_chart.parent / "SOURCE").read_text(encoding="utf-8").split()
    assert source == [
        f"github.com/kubeflow/spark-operator/v2@v{chart['version']}",
        make_variable("SPARK_OPERATOR_SUM"),
    ]


def test_should_validate_every_spark_application_against_the_crd(
    rendered: list[dict], operator_chart: Path
) -> None:
    """Both SparkApplications satisfy the v1beta2 CRD with unknown fields rejected."""
    apps = of_kind(rendered, "SparkApplication")
    assert {app["metadata"]["name"] for app in apps} == {"enrichment", "aggregation"}
    assert {app["metadata"]["name"]: spark_application_errors(app) for app in apps} == {
        "enrichment": [],
        "aggregation": [],
    }


def test_should_validate_every_monitoring_object_against_its_crd(rendered: list[dict]) -> None:
    """PodMonitors and the PrometheusRule, when rendered, satisfy the prometheus-operator CRDs
    with unknown fields rejected."""
    monitors = [obj for obj in rendered if obj["kind"] in MONITORING_KINDS]
    assert {f"{o['kind']}/{o['metadata']['name']}": monitoring_errors(o) for o in monitors} == {
        f"{o['kind']}/{o['metadata']['name']}": [] for o in monitors
    }


def test_should_render_the_monitoring_objects_only_when_asked(
    default_objects: list[dict], custom_objects: list[dict]
) -> None:
    """None by default; with monitoring enabled, a PodMonitor per component with the extra
    labels, the PrometheusRule holding exactly the groups of files/alerts.rules.yaml, and the
    dashboard ConfigMap holding files/grafana-dashboard.json under the sidecar's label."""
    assert [o for o in default_objects if o["kind"] in MONITORING_KINDS] == []
    assert [
        o for o in of_kind(default_objects, "ConfigMap") if o["metadata"]["name"] == "grafana-dashboard"
    ] == []
    dashboard = find(custom_objects, "ConfigMap", "grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = json.loads((CHART_DIR / "files" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert json.loads(dashboard["data"]["ticket-pipeline.json"]) == committed
    monitors = of_kind(custom_objects, "PodMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"producer", "enrichment", "aggregation"}
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in monitors)
    (rule,) = of_kind(custom_objects, "PrometheusRule")
    rule_file = yaml.safe_load((CHART_DIR / "files" / "alerts.rules.yaml").read_text(encoding="utf-8"))
    assert rule["spec"] == rule_file


def test_should_use_the_crds_of_the_pinned_prometheus_operator_module() -> None:
    """The monitoring CRDs come from the prometheus-operator Go module the Makefile pins."""
    source = (monitoring_crd_dir().parent / "SOURCE").read_text(encoding="utf-8").split()
    assert source == [
        f"github.com/prometheus-operator/prometheus-operator@v{make_variable('PROMETHEUS_OPERATOR_VERSION')}",
        make_variable("PROMETHEUS_OPERATOR_SUM"),
    ]


def test_should_reject_a_pod_monitor_with_a_misspelt_field(custom_objects: list[dict]) -> None:
    monitor = copy.deepcopy(find(custom_objects, "PodMonitor", "enrichment"))
    monitor["spec"]["podMetricsEndpoints"][0]["pathh"] = monitor["spec"]["podMetricsEndpoints"][0].pop("path")
    assert any("pathh" in error for error in monitoring_errors(monitor))


def test_should_turn_int_or_string_into_any_of_and_close_objects() -> None:
    """The CRD conversion follows SOURCES.md: int-or-string as anyOf, objects closed, except
    those that preserve unknown fields."""
    schema = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                     "properties": {"a": {"type": "string"}}},
        },
    }  # fmt: skip
    strict = strict_crd_schema(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["port"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert "additionalProperties" not in strict["properties"]["open"]


def test_should_reject_a_spark_application_with_a_misspelt_field(
    default_objects: list[dict], operator_chart: Path
) -> None:
    """A typo anywhere in a SparkApplication, top-level or nested, is an error."""
    app = copy.deepcopy(find(default_objects, "SparkApplication", "enrichment"))
    app["spec"]["driver"]["serviceAcount"] = app["spec"]["driver"].pop("serviceAccount")
    app["spec"]["restartPolicy"]["type"] = "Forever"
    errors = spark_application_errors(app)
    assert any("serviceAcount" in error for error in errors)
    assert any("Forever" in error for error in errors)


def _broken_chart(tmp_path: Path, template: str, old: str, new: str) -> Path:
    """Copy the chart into tmp_path with one template edited (the edit must apply)."""
    chart = tmp_path / "charts"
    shutil.copytree(CHART_DIR, chart)
    path = chart / "templates" / template
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {template}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return chart


@pytest.mark.parametrize(
    ("template", "old", "new", "field"),
    [
        ("producer/deployment.yaml", "imagePullPolicy:", "imagePullPolicyy:", "imagePullPolicyy"),
        (
            "console/deployment.yaml",
            "      containers:",
            "      contianers:",
            "'containers' is a required",
        ),
        ("postgresql/statefulset.yaml", "serviceName:", "servicename:", "servicename"),
    ],
)
def test_should_reject_a_chart_whose_template_has_an_unknown_field(
    tmp_path: Path, template: str, old: str, new: str, field: str
) -> None:
    """A misspelt field in a template renders fine with helm, but the suite rejects it."""
    objects = render_chart(chart_dir=_broken_chart(tmp_path, template, old, new))
    errors = core_errors(objects)
    assert any(field in error for error in errors), errors


def test_should_reject_a_chart_whose_spark_application_has_an_unknown_field(
    tmp_path: Path, operator_chart: Path
) -> None:
    """A misspelt SparkApplication field in the template fails the CRD check."""
    chart = _broken_chart(
        tmp_path, "spark/sparkapplications.yaml", "mainApplicationFile:", "mainApplicationFilee:"
    )
    app = find(render_chart(chart_dir=chart), "SparkApplication", "aggregation")
    errors = spark_application_errors(app)
    assert any("mainApplicationFilee" in error for error in errors), errors
    assert any("'mainApplicationFile' is a required property" in error for error in errors)


def test_should_reject_a_wrongly_typed_field_in_a_core_object(default_objects: list[dict]) -> None:
    """Types are checked too, not only names: replicas as a string is an error."""
    producer = copy.deepcopy(find(default_objects, "Deployment", "producer"))
    producer["spec"]["replicas"] = "three"
    assert core_errors([producer])


def test_should_parse_every_rendered_document_as_yaml(tmp_path: Path) -> None:
    """The rendered manifest is plain YAML documents, each with apiVersion, kind and name."""
    for obj in render_chart():
        assert yaml.safe_dump(obj)
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
