"""Render the ticket-pipeline chart with the real helm and look objects up in the result.

Reusable outside tests/k8s, e.g. by a chart-driven run that starts the rendered producer and
Spark jobs natively::

    from tests.k8s.render import render_chart, find, env_of, containers, spark_run_spec

    objects = render_chart({"topic": {"partitions": 6}})
    producer = containers(find(objects, "Deployment", "producer"))[0]
    env = env_of(producer)            # {"KAFKA_BOOTSTRAP_SERVERS": "redpanda.default.svc...", ...}
    run = spark_run_spec(find(objects, "SparkApplication", "enrichment"))
    run.local_main_file               # <repo>/jobs/enrichment.py

helm is taken from PATH (`make test` puts .local/bin first; `make helm` builds it).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CHART_DIR",
    "IMAGE_WORKDIR",
    "KIND_CONFIG",
    "KUBE_VERSION",
    "NAMESPACE",
    "RELEASE",
    "REPO_ROOT",
    "HelmError",
    "HelmNotFoundError",
    "SparkRunSpec",
    "all_containers",
    "containers",
    "env_of",
    "find",
    "helm_binary",
    "kind_node_version",
    "of_kind",
    "pod_spec",
    "render_chart",
    "render_notes",
    "replace_hosts",
    "run_helm",
    "run_make",
    "secret_passwords",
    "service_host",
    "spark_pods",
    "spark_run_spec",
    "walk_strings",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts"
KIND_CONFIG = REPO_ROOT / "k8s" / "kind-config.yaml"
RELEASE = "ticket-pipeline"
NAMESPACE = "default"
CLUSTER_DOMAIN = "cluster.local"
# Where images/spark/Dockerfile puts core/ and jobs/ (its WORKDIR, on PYTHONPATH).
IMAGE_WORKDIR = "/opt/spark/work-dir"

HELM_MISSING = (
    "helm is not on PATH. Run the tests with `make test` (it builds helm into .local/bin and "
    "puts that folder on PATH), or build it with `make helm` and add .local/bin to PATH."
)


class HelmNotFoundError(RuntimeError):
    """helm is not on PATH."""


class HelmError(RuntimeError):
    """helm exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} failed:\n{stderr}")
        self.stderr = stderr


def kind_node_version(kind_config: Path = KIND_CONFIG) -> str:
    """Return the Kubernetes version of the kind node pinned in kind-config.yaml, e.g. 1.36.1."""
    config = yaml.safe_load(kind_config.read_text(encoding="utf-8"))
    images = {node["image"] for node in config["nodes"]}
    if len(images) != 1:
        raise ValueError(f"{kind_config}: expected one node image, found {sorted(images)}")
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+\.\d+)(@sha256:[0-9a-f]{64})?", images.pop())
    if match is None:
        raise ValueError(f"{kind_config}: node image is not a pinned kindest/node:vX.Y.Z")
    return match.group(1)


KUBE_VERSION = kind_node_version()


def helm_binary() -> str:
    """Return the path of helm on PATH, or raise HelmNotFoundError saying how to get it."""
    path = shutil.which("helm")
    if path is None:
        raise HelmNotFoundError(HELM_MISSING)
    return path


def run_helm(*args: str, cwd: Path = REPO_ROOT) -> str:
    """Run helm with ``args`` and return its stdout; raise HelmError on a non-zero exit."""
    completed = subprocess.run(
        [helm_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if completed.returncode != 0:
        raise HelmError(list(args), completed.stderr)
    return completed.stdout


def run_make(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the top Makefile with ``args`` (as a fresh make, even when the tests run under make)."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=check,
    )  # fmt: skip


@functools.lru_cache(maxsize=32)
def _render_cached(
    values_json: str, chart_dir: str, namespace: str, release: str, kube_version: str
) -> tuple[dict[str, Any], ...]:
    with tempfile.TemporaryDirectory(prefix="ticket-pipeline-values-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(json.loads(values_json)), encoding="utf-8")
        manifest = run_helm(
            "template", release, chart_dir,
            "--namespace", namespace,
            "--kube-version", kube_version,
            "--values", str(values_file),
        )  # fmt: skip
    return tuple(doc for doc in yaml.safe_load_all(manifest) if doc)


def render_chart(
    values: Mapping[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    kube_version: str = KUBE_VERSION,
) -> list[dict[str, Any]]:
    """Render the chart with ``helm template`` and return its objects (hooks and tests included).

    ``values`` override the chart's values.yaml like a ``-f`` file; the schema applies, so
    invalid values raise HelmError. Results are cached; each call returns a fresh deep copy.
    """
    values_json = json.dumps(dict(values or {}), sort_keys=True)
    objects = _render_cached(values_json, str(chart_dir), namespace, release, kube_version)
    return copy.deepcopy(list(objects))


def render_notes(
    values: Mapping[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    kube_version: str = KUBE_VERSION,
) -> str:
    """Render NOTES.txt offline with ``values``.

    `helm install --dry-run` ignores --kube-version, so this renders a copy of the chart where
    NOTES.txt is the body of a named template printed into a ConfigMap.
    """
    with tempfile.TemporaryDirectory(prefix="ticket-pipeline-notes-") as tmp:
        chart = Path(tmp) / "chart"
        shutil.copytree(chart_dir, chart)
        notes = (chart / "templates" / "NOTES.txt").read_text(encoding="utf-8")
        (chart / "templates" / "_notes_under_test.tpl").write_text(
            '{{- define "notes-under-test" -}}\n' + notes + "{{- end -}}\n", encoding="utf-8"
        )
        (chart / "templates" / "notes-under-test.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\n"
            'data:\n  notes: {{ include "notes-under-test" . | quote }}\n',
            encoding="utf-8",
        )
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values or {})), encoding="utf-8")
        manifest = run_helm(
            "template", release, str(chart), "--namespace", namespace,
            "--kube-version", kube_version, "--values", str(values_file),
            "--show-only", "templates/notes-under-test.yaml",
        )  # fmt: skip
    return yaml.safe_load(manifest)["data"]["notes"]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Return the objects of one kind, in rendering order."""
    return [obj for obj in objects if obj.get("kind") == kind]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """Return the object of ``kind`` named ``name``; KeyError lists what exists otherwise."""
    for obj in of_kind(objects, kind):
        if obj["metadata"]["name"] == name:
            return obj
    names = sorted(obj["metadata"]["name"] for obj in of_kind(objects, kind))
    raise KeyError(f"no {kind} named {name!r}; rendered {kind}s: {names}")


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the pod spec of a Pod, Deployment, StatefulSet or Job; None for other kinds."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return obj["spec"]["template"]["spec"]
    return None


def containers(obj: Mapping[str, Any], *, init: bool = False) -> list[dict[str, Any]]:
    """Return the containers of a workload (with ``init``, its init containers first)."""
    spec = pod_spec(obj) or {}
    found = list(spec.get("initContainers", [])) if init else []
    return found + list(spec.get("containers", []))


def spark_pods(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the driver and executor blocks of a SparkApplication (empty for other kinds)."""
    if obj.get("kind") != "SparkApplication":
        return []
    return [obj["spec"]["driver"], obj["spec"]["executor"]]


def all_containers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every container an object declares: a workload's init and main containers, and the
    init containers and sidecars of a SparkApplication's driver and executors."""
    found = containers(obj, init=True)
    for pod in spark_pods(obj):
        found += [*pod.get("initContainers", []), *pod.get("sidecars", [])]
    return found


def env_of(container_or_spark_pod: Mapping[str, Any]) -> dict[str, Any]:
    """Map env var names to their value, or to their ``valueFrom`` dict for secret references.

    Works on a container and on a SparkApplication's ``driver``/``executor`` block alike.
    """
    return {
        var["name"]: var["value"] if "value" in var else var["valueFrom"]
        for var in container_or_spark_pod.get("env", [])
    }


def service_host(service: str, namespace: str = NAMESPACE, cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """Return the DNS name the chart uses for a Service, e.g. redpanda.default.svc.cluster.local."""
    return f"{service}.{namespace}.svc.{cluster_domain}"


def replace_hosts(value: str, addresses: Mapping[str, str], namespace: str = NAMESPACE) -> str:
    """Replace ``<service-host>:<port>`` in ``value`` by local addresses, keyed by Service name.

    E.g. replace_hosts(env["DATABASE_URL"], {"postgresql": "127.0.0.1:55432"}) maps the chart's
    postgresql://tickets@postgresql.default.svc.cluster.local:5432/tickets to 127.0.0.1:55432.
    """
    for service, address in addresses.items():
        value = re.sub(rf"{re.escape(service_host(service, namespace))}(:\d+)?", address, value)
    return value


def resolved_env(holder: Mapping[str, Any], passwords: Mapping[str, str]) -> dict[str, str]:
    """A container's (or Spark pod block's) env with each secret reference resolved, by its key,
    to the password ``passwords`` maps that key to."""
    return {
        name: passwords[value["secretKeyRef"]["key"]] if isinstance(value, dict) else value
        for name, value in env_of(holder).items()
    }


def secret_passwords(owner: str, writer: str, reader: str, chart_dir: Path = CHART_DIR) -> dict[str, str]:
    """Map the Secret keys of the chart's default values to local passwords: the owner's key
    (postgresql.auth.secretKeys.userPasswordKey) to ``owner``, the writer's to ``writer``, the
    reader's to ``reader``.

    A chart-driven run resolves each rendered secretKeyRef by its key with this.
    """
    values = yaml.safe_load((chart_dir / "values.yaml").read_text(encoding="utf-8"))
    keys = values["postgresql"]["auth"]["secretKeys"]
    return {
        keys["userPasswordKey"]: owner,
        keys["writerPasswordKey"]: writer,
        keys["readerPasswordKey"]: reader,
    }


def walk_strings(node: Any) -> Iterator[str]:
    """Yield every string inside a parsed YAML document (keys excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_strings(item)


@dataclass(frozen=True)
class SparkRunSpec:
    """What the operator would spark-submit for one SparkApplication, mapped onto the repo."""

    name: str
    main_application_file: str
    local_main_file: Path
    module: str
    spark_conf: dict[str, str]
    driver_env: dict[str, Any]


def spark_run_spec(app: Mapping[str, Any], repo_root: Path = REPO_ROOT) -> SparkRunSpec:
    """Return the main file (in the image and in the repo), Spark conf and driver env of ``app``."""
    main = app["spec"]["mainApplicationFile"]
    prefix = f"local://{IMAGE_WORKDIR}/"
    if not main.startswith(prefix):
        raise ValueError(f"{main!r} is not inside the image's {IMAGE_WORKDIR}")
    relative = main.removeprefix(prefix)
    return SparkRunSpec(
        name=app["metadata"]["name"],
        main_application_file=main,
        local_main_file=repo_root / relative,
        module=relative.removesuffix(".py").replace("/", "."),
        spark_conf=dict(app["spec"].get("sparkConf", {})),
        driver_env=env_of(app["spec"]["driver"]),
    )
