"""Strict offline validation of rendered objects: core kinds, SparkApplications and the
prometheus-operator's PodMonitor, ServiceMonitor and PrometheusRule.

- Core kinds: kubernetes-validate's strict schemas (unknown fields rejected) of the newest
  Kubernetes version it bundles that is not newer than the kind node's.
- SparkApplication: the CRD of the pinned Spark operator release, from its Go module (`make
  spark-operator` fetches its chart into .local), turned into a strict JSON schema the way
  kubeconform's openapi2jsonschema does. The strictness is ours, added here at test time.
- PodMonitor, ServiceMonitor, PrometheusRule: the CRDs of the pinned prometheus-operator release, from its Go
  module (`make prometheus-operator-crds`), made strict the same way.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions

from .render import KUBE_VERSION, REPO_ROOT

__all__ = [
    "CRD_FILE_NAME",
    "CRD_SHA256",
    "MONITORING_CRDS_ENV",
    "MONITORING_KINDS",
    "OPERATOR_CHART_ENV",
    "MissingOperatorChart",
    "core_schema_version",
    "make_variable",
    "monitoring_crd_dir",
    "monitoring_errors",
    "operator_chart_dir",
    "spark_application_errors",
    "strict_crd_schema",
    "validate_core_object",
]

CRD_FILE_NAME = "sparkoperator.k8s.io_sparkapplications.yaml"
# The CRD of kubeflow/spark-operator v2.5.2 (charts/spark-operator-chart/crds/), byte for byte.
CRD_SHA256 = "ecd9c14fcadb9d5f8ced4c4ee31920548ea53a892e0a69c3e43aa758bfca6d94"
OPERATOR_CHART_ENV = "SPARK_OPERATOR_CHART"  # set by `make test`
MONITORING_CRDS_ENV = "PROMETHEUS_OPERATOR_CRDS"  # set by `make test`
# The monitoring.coreos.com kinds the chart may render, and their CRD files.
MONITORING_KINDS = {
    "PodMonitor": "monitoring.coreos.com_podmonitors.yaml",
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
MAKEFILE = REPO_ROOT / "Makefile"


class MissingOperatorChart(FileNotFoundError):
    """The pinned Spark operator chart has not been fetched."""


def make_variable(name: str, makefile: Path = MAKEFILE) -> str:
    """Return the value of `NAME := value` in a Makefile."""
    match = re.search(rf"^{name}\s*:?=\s*(\S+)\s*$", makefile.read_text(encoding="utf-8"), re.M)
    if not match:
        raise LookupError(f"{makefile.name} does not set {name}")
    return match.group(1)


def operator_chart_dir() -> Path:
    """Return the fetched Spark operator chart: $SPARK_OPERATOR_CHART, else the Makefile's folder.

    Raises MissingOperatorChart, saying how to fetch it, when its CRD is not there.
    """
    return _fetched(
        OPERATOR_CHART_ENV,
        "SPARK_OPERATOR",
        "spark-operator-chart",
        [f"crds/{CRD_FILE_NAME}"],
        "spark-operator",
    )


def monitoring_crd_dir() -> Path:
    """Return the fetched prometheus-operator CRDs: $PROMETHEUS_OPERATOR_CRDS, else the Makefile's
    folder. Raises MissingOperatorChart, saying how to fetch them, when they are not there."""
    return _fetched(
        MONITORING_CRDS_ENV,
        "PROMETHEUS_OPERATOR",
        "prometheus-operator-crd",
        list(MONITORING_KINDS.values()),
        "prometheus-operator-crds",
    )


def _fetched(env: str, project: str, folder: str, files: list[str], target: str) -> Path:
    """A folder that `make <target>` fetched (scripts/setup/fetch_go_module.sh): $env, else
    .local/<project>-<version>/<folder>; MissingOperatorChart naming the target when `files`
    are not all there."""
    version = make_variable(f"{project}_VERSION")
    configured = os.environ.get(env)
    name = project.lower().replace("_", "-")
    found = Path(configured) if configured else REPO_ROOT / ".local" / f"{name}-{version}" / folder
    missing = [file for file in files if not (found / file).is_file()]
    if missing:
        raise MissingOperatorChart(
            f"{', '.join(missing)} not found in {found}: run `make test`, or `make {target}`"
            f" to fetch the {name} {version} files"
        )
    return found


def core_schema_version(kube_version: str = KUBE_VERSION) -> str:
    """Return the newest Kubernetes version kubernetes-validate bundles that is <= kube_version."""
    wanted = _minor(kube_version)
    usable = [v for v in all_versions() if _minor(v) <= wanted]
    if not usable:
        raise LookupError(f"kubernetes-validate bundles no schema <= {kube_version}")
    return max(usable, key=lambda v: tuple(int(part) for part in v.split(".")))


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


def validate_core_object(obj: Mapping[str, Any], kube_version: str = KUBE_VERSION) -> None:
    """Validate a core object strictly; raise kubernetes_validate.ValidationError on any error.

    Raises kubernetes_validate.SchemaNotFoundError for kinds it has no schema of (CRs).
    """
    kubernetes_validate.validate(dict(obj), core_schema_version(kube_version), strict=True)


def strict_crd_schema(schema: Any) -> Any:
    """Return a copy of a CRD's openAPIV3Schema as a strict Draft 7 JSON schema.

    x-kubernetes-int-or-string becomes anyOf integer/string; every object schema with
    properties gets additionalProperties: false unless it is x-kubernetes-preserve-unknown-fields;
    an RE2 flag group inside a pattern moves to its start, where Python's re accepts it.
    """
    if isinstance(schema, list):
        return [strict_crd_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: strict_crd_schema(value) for key, value in schema.items()}
    pattern = converted.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern[1:]:
        # Go's RE2 takes a flag group anywhere (prometheus-operator: "^(?i)(abort|warn)?$");
        # Python's re only at the start, where it means the same for the whole pattern.
        converted["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if converted.pop("x-kubernetes-int-or-string", False):
        converted.pop("type", None)
        converted["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in converted
        and not converted.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in converted
    ):
        converted["additionalProperties"] = False
    return converted


@functools.cache
def _crd_validator(path: Path, version: str) -> jsonschema.Draft7Validator:
    """A strict validator of one version of the CRD in `path`."""
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    schema = strict_crd_schema(copy.deepcopy(versions[version]["schema"]["openAPIV3Schema"]))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _spark_application_validator() -> jsonschema.Draft7Validator:
    return _crd_validator(operator_chart_dir() / "crds" / CRD_FILE_NAME, "v1beta2")


def crd_sha256() -> str:
    """Return the sha256 of the CRD file in use."""
    return hashlib.sha256((operator_chart_dir() / "crds" / CRD_FILE_NAME).read_bytes()).hexdigest()


def spark_application_errors(app: Mapping[str, Any]) -> list[str]:
    """Return every violation of the SparkApplication CRD (strict) and of its ObjectMeta."""
    return _custom_resource_errors(app, _spark_application_validator(), "sparkoperator.k8s.io/v1beta2")


def monitoring_errors(obj: Mapping[str, Any]) -> list[str]:
    """Return every violation of a monitoring object's CRD (strict) and ObjectMeta."""
    validator = _crd_validator(monitoring_crd_dir() / MONITORING_KINDS[obj["kind"]], "v1")
    return _custom_resource_errors(obj, validator, "monitoring.coreos.com/v1")


def _custom_resource_errors(
    obj: Mapping[str, Any], validator: jsonschema.Draft7Validator, api_version: str
) -> list[str]:
    errors = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(dict(obj))
    ]
    if obj.get("apiVersion") != api_version:
        errors.append(f"apiVersion: {obj.get('apiVersion')!r} is not {api_version}")
    # The CRD leaves metadata open; check it as the ObjectMeta of a core object instead.
    try:
        validate_core_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]})
    except kubernetes_validate.ValidationError as error:
        errors.append(f"metadata: {error.message}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"].get("name", "")):
        errors.append("metadata.name: not a DNS-1035 label")
    return errors
