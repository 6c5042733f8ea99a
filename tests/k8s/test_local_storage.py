"""Every pod of the chart is bounded on the node's disk: each emptyDir has a sizeLimit and each
container an ephemeral-storage request and limit, from the values' resources blocks (the Spark
containers' through their pod templates), and the limits hold what the emptyDirs may fill.

The kubelet evicts a pod whose emptyDir outgrows its sizeLimit, whose container outgrows its
limit (logs and writable layer), or whose emptyDirs and containers together outgrow the sum of
its containers' limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from .conftest import CUSTOM_VALUES
from .render import HelmError, all_containers, find, of_kind, pod_spec, render_chart, spark_pods

# The kubelet keeps at most 5 log files of 10 MiB per container (containerLogMaxFiles and
# containerLogMaxSize by default): what a container's logs may take of its limit.
LOG_BYTES = 5 * 10 * 2**20
SPARK_CONTAINERS = {"driver": "spark-kubernetes-driver", "executor": "spark-kubernetes-executor"}
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}  # fmt: skip


def quantity_bytes(quantity: str | int) -> int:
    """Bytes of a Kubernetes storage quantity such as 256Mi or 1G."""
    match = re.fullmatch(r"(\d+)([kMGT]i?|Ki)?", str(quantity))
    assert match, f"not a storage quantity: {quantity!r}"
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def spark_template_container(pod: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The Spark container of a SparkApplication's driver or executor pod template."""
    (container,) = pod["template"]["spec"]["containers"]
    assert container["name"] == SPARK_CONTAINERS[role]
    return container


def containers_with_resources(obj: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, container) of every container an object runs: a workload's and a SparkApplication's
    init containers and sidecars, and the Spark containers of its pod templates."""
    for container in all_containers(obj):
        yield f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}", container
    if obj["kind"] == "SparkApplication":
        for role in SPARK_CONTAINERS:
            container = spark_template_container(obj["spec"][role], role)
            yield f"SparkApplication/{obj['metadata']['name']}/{role}", container


def empty_dirs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The emptyDir volumes of a workload or of a SparkApplication."""
    volumes = (pod_spec(obj) or {}).get("volumes", [])
    if obj["kind"] == "SparkApplication":
        volumes = obj["spec"].get("volumes", [])
    return [volume for volume in volumes if "emptyDir" in volume]


def test_should_give_every_container_an_ephemeral_storage_request_and_limit(rendered: list[dict]) -> None:
    """Every container, init containers, Jobs, the helm test and the Spark driver and executors
    included, requests and is limited in ephemeral storage, the request within the limit."""
    checked = []
    for obj in rendered:
        for where, container in containers_with_resources(obj):
            resources = container.get("resources", {})
            request = resources.get("requests", {}).get("ephemeral-storage")
            limit = resources.get("limits", {}).get("ephemeral-storage")
            assert request and limit, where
            assert quantity_bytes(request) <= quantity_bytes(limit), where
            checked.append(where)
    assert any(where.endswith("/executor") for where in checked), checked


def test_should_give_every_empty_dir_a_size_limit(rendered: list[dict]) -> None:
    """No emptyDir of the chart can fill the node's disk: each has a sizeLimit."""
    found = 0
    for obj in rendered:
        for volume in empty_dirs(obj):
            assert quantity_bytes(volume["emptyDir"]["sizeLimit"]) > 0, (obj["metadata"]["name"], volume)
            found += 1
    assert found >= 10


def test_should_give_each_spark_pod_a_bounded_local_dir_of_its_own(rendered: list[dict]) -> None:
    """The driver and the executors each mount one spark-local-dir-* emptyDir with a sizeLimit.
    Spark then takes it as SPARK_LOCAL_DIRS (shuffle files, spills, blocks on disk) instead of
    adding an emptyDir without a limit; the operator turns it into Spark's volume conf."""
    for app in of_kind(rendered, "SparkApplication"):
        volumes = {v["name"]: v for v in app["spec"]["volumes"]}
        for role, pod in zip(("driver", "executor"), spark_pods(app), strict=True):
            local = [m for m in pod["volumeMounts"] if m["name"].startswith("spark-local-dir-")]
            assert len(local) == 1, (app["metadata"]["name"], role)
            assert volumes[local[0]["name"]]["emptyDir"]["sizeLimit"], (app["metadata"]["name"], role)


def test_should_hold_each_pods_empty_dirs_and_logs_within_its_containers_limits(rendered: list[dict]) -> None:
    """A pod's containers' ephemeral-storage limits add up to at least its emptyDirs full plus each
    container's logs at the kubelet's rotation, so the sizeLimits, not an eviction of the whole
    pod, are what bound the emptyDirs. For Spark: the driver's and each executor's own volumes."""
    for obj in rendered:
        spec = pod_spec(obj)
        if spec is not None:
            sizes = sum(quantity_bytes(v["emptyDir"]["sizeLimit"]) for v in empty_dirs(obj))
            limits = [
                quantity_bytes(c["resources"]["limits"]["ephemeral-storage"]) for c in spec["containers"]
            ]
            assert sum(limits) >= sizes + LOG_BYTES * len(limits), obj["metadata"]["name"]
        if obj["kind"] == "SparkApplication":
            sizes_of = {v["name"]: v["emptyDir"]["sizeLimit"] for v in empty_dirs(obj)}
            for role, pod in zip(SPARK_CONTAINERS, spark_pods(obj), strict=True):
                sizes = sum(
                    quantity_bytes(sizes_of[m["name"]]) for m in pod["volumeMounts"] if m["name"] in sizes_of
                )
                limit = spark_template_container(pod, role)["resources"]["limits"]["ephemeral-storage"]
                assert quantity_bytes(limit) >= sizes + LOG_BYTES, (obj["metadata"]["name"], role)


def test_should_take_sizes_and_ephemeral_storage_from_the_values(custom_objects: list[dict]) -> None:
    """Custom sizes reach the pods: the producer's emptyDir and resources, the enrichment
    executors' local dir and their container's request and limit."""
    producer = find(custom_objects, "Deployment", "producer")
    assert [v["emptyDir"]["sizeLimit"] for v in empty_dirs(producer)] == ["256Mi"]
    custom = CUSTOM_VALUES["spark"]["enrichment"]["executor"]
    app = find(custom_objects, "SparkApplication", "enrichment")
    executor = spark_template_container(app["spec"]["executor"], "executor")
    assert executor["resources"] == {
        "requests": {"ephemeral-storage": custom["ephemeralStorageRequest"]},
        "limits": {"ephemeral-storage": custom["ephemeralStorageLimit"]},
    }
    sizes = {v["name"]: v["emptyDir"]["sizeLimit"] for v in empty_dirs(app)}
    assert sizes["spark-local-dir-executor"] == custom["localDirSizeLimit"]


@pytest.mark.parametrize(
    "values",
    [
        {"producer": {"resources": {"limits": {"ephemeral-storage": None}}}},
        {"helperResources": {"requests": {"ephemeral-storage": None}}},
        {"dashboard": {"emptyDirSizeLimit": "a lot"}},
        {"spark": {"enrichment": {"executor": {"ephemeralStorageLimit": None}}}},
    ],
    ids=["no producer limit", "no helper request", "a size that is no quantity", "no executor limit"],
)
def test_should_refuse_values_without_ephemeral_storage_or_with_a_bad_size(values: dict[str, Any]) -> None:
    """values.schema.json requires ephemeral-storage in every resources block and a size in every
    sizeLimit value: removing one fails the install instead of leaving a container unbounded."""
    with pytest.raises(HelmError) as failure:
        render_chart(values)
    assert "schema" in failure.value.stderr.lower()
