"""A NetworkPolicy evaluator (networking.k8s.io/v1), to check the chart's policies offline.

Given pods (namespace, labels, named container ports), the namespaces' labels and the
NetworkPolicies, ``Cluster.allows`` says whether a connection from a pod or an outside address
to a pod or an outside address, on a port and protocol, is allowed, as the Kubernetes API
reference defines NetworkPolicy:

- a pod that no policy selects for a direction (Ingress, Egress) is open in that direction;
- a pod that some do may do what any rule of any of them allows: the union;
- a connection needs both the source's egress and the destination's ingress to allow it;
- ``policyTypes`` defaults to Ingress, plus Egress when the policy has egress rules;
- a rule without ports allows every port, a rule without peers (``from``, ``to``) every peer;
- a peer with a podSelector only selects pods of the policy's namespace, one with a
  namespaceSelector only every pod of the namespaces it selects, one with both the pods it
  selects in those namespaces; an ipBlock selects its CIDR minus its ``except``;
- a port is a number (with ``endPort``, a range) or the name of a container port of the
  destination pod; the protocol defaults to TCP.

Where the API leaves the answer to the network plugin, this evaluator takes the reading that
holds for every plugin: an ipBlock matches addresses outside the cluster only (pods have no
address here). Traffic that never crosses the pod's interface is out of its scope, as it is
out of NetworkPolicy's: a pod to itself, its node's kubelet probing it, `kubectl port-forward`
(which connects to the pod's loopback).

``release_pods`` turns rendered chart objects into the pods they make, the Spark operator's
driver and executor pods included, with the labels and ports Spark and the operator give them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_BLOCK_MANAGER_PORT",
    "DEFAULT_DRIVER_PORT",
    "Address",
    "Cluster",
    "Endpoint",
    "Pod",
    "release_pods",
    "selector_matches",
]

# Spark on Kubernetes: the driver's RPC and every block manager's port when the conf sets none
# (org.apache.spark.deploy.k8s.Constants); an executor's block manager then binds a random port.
DEFAULT_DRIVER_PORT = 7078
DEFAULT_BLOCK_MANAGER_PORT = 7079
_SPARK_UI_DEFAULT_PORT = 4040
_METADATA_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    """A pod: where it runs, its labels, and its named container ports (name -> (port, protocol))."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Address:
    """An address outside the cluster's pods: an external broker, the API server, the Internet."""

    ip: str
    name: str = ""

    def __str__(self) -> str:
        return self.name or self.ip


Endpoint = Pod | Address


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector selects ``labels``; an empty (or absent) selector selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In":
            matched = key in labels and labels[key] in values
        elif operator == "NotIn":
            matched = key not in labels or labels[key] not in values
        elif operator == "Exists":
            matched = key in labels
        elif operator == "DoesNotExist":
            matched = key not in labels
        else:
            raise ValueError(f"unknown label selector operator {operator!r}")
        if not matched:
            return False
    return True


def _policy_types(policy: Mapping[str, Any]) -> set[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


class Cluster:
    """Namespaces, their labels and the NetworkPolicies in force; answers ``allows``."""

    def __init__(
        self,
        policies: Iterable[Mapping[str, Any]],
        namespaces: Mapping[str, Mapping[str, str]],
        default_namespace: str,
    ) -> None:
        """``namespaces`` maps each namespace to its labels (kubernetes.io/metadata.name is
        added, as the API server does); a policy without a namespace is in ``default_namespace``."""
        self.namespaces = {name: {**labels, _METADATA_NAME: name} for name, labels in namespaces.items()}
        self.policies = [
            (policy.get("metadata", {}).get("namespace") or default_namespace, policy) for policy in policies
        ]

    def selecting(self, pod: Pod, direction: str) -> list[Mapping[str, Any]]:
        """The policies that select ``pod`` for ``direction`` ("Ingress" or "Egress")."""
        return [
            policy
            for namespace, policy in self.policies
            if namespace == pod.namespace
            and direction in _policy_types(policy)
            and selector_matches(policy["spec"].get("podSelector"), pod.labels)
        ]

    def allows(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether ``source`` may open a connection to ``destination`` on ``port``/``protocol``."""
        return self._direction_allows("Egress", source, destination, port, protocol) and (
            self._direction_allows("Ingress", destination, source, port, protocol, destination)
        )

    def _direction_allows(
        self,
        direction: str,
        subject: Endpoint,
        peer: Endpoint,
        port: int,
        protocol: str,
        destination: Endpoint | None = None,
    ) -> bool:
        """Whether the policies of ``subject`` let it talk with ``peer`` in ``direction``."""
        if not isinstance(subject, Pod):
            return True  # outside the cluster's pods: no NetworkPolicy applies
        policies = self.selecting(subject, direction)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        target = destination if destination is not None else peer
        for policy in policies:
            # Policies select pods of their own namespace only: that of the subject.
            for rule in policy["spec"].get(rules_key) or []:
                if not self._port_matches(rule.get("ports"), port, protocol, target):
                    continue
                peers = rule.get(peers_key) or []
                if not peers or any(self._peer_matches(p, peer, subject.namespace) for p in peers):
                    return True
        return False

    def _peer_matches(self, peer: Mapping[str, Any], endpoint: Endpoint, policy_namespace: str) -> bool:
        if "ipBlock" in peer:
            if not isinstance(endpoint, Address):
                return False
            address = ipaddress.ip_address(endpoint.ip)
            block = ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False)
            if address.version != block.version or address not in block:
                return False
            return not any(
                address.version == excluded.version and address in excluded
                for excluded in map(ipaddress.ip_network, peer["ipBlock"].get("except") or [])
            )
        if not isinstance(endpoint, Pod):
            return False
        if "namespaceSelector" in peer:
            labels = self.namespaces.get(endpoint.namespace)
            if labels is None:
                raise KeyError(f"namespace {endpoint.namespace!r} of {endpoint} is not in the cluster")
            in_namespace = selector_matches(peer["namespaceSelector"], labels)
        else:
            in_namespace = endpoint.namespace == policy_namespace
        return in_namespace and selector_matches(peer.get("podSelector"), endpoint.labels)

    @staticmethod
    def _port_matches(
        ports: Sequence[Mapping[str, Any]] | None, port: int, protocol: str, destination: Endpoint
    ) -> bool:
        if not ports:
            return True
        for rule_port in ports:
            if rule_port.get("protocol", "TCP") != protocol:
                continue
            value = rule_port.get("port")
            if value is None:
                return True  # every port of the protocol
            if isinstance(value, str):
                named = destination.ports.get(value) if isinstance(destination, Pod) else None
                if named == (port, protocol):
                    return True
                continue
            if value <= port <= rule_port.get("endPort", value):
                return True
        return False


def _template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    if obj["kind"] == "Pod":
        return dict(obj["metadata"].get("labels") or {})
    return dict(obj["spec"]["template"]["metadata"].get("labels") or {})


def _container_ports(pod_spec: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    ports = {}
    for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
        for port in container.get("ports", []):
            if "name" in port:
                ports[port["name"]] = (int(port["containerPort"]), port.get("protocol", "TCP"))
    return ports


def _spark_pods(app: Mapping[str, Any], namespace: str, executors: int) -> list[Pod]:
    """The driver and ``executors`` executor pods of a SparkApplication, labelled and exposed as
    the operator and Spark make them (the driver's and executors' labels of the spec, Spark's
    spark-* labels and the operator's), with Spark's named container ports."""
    name, spec = app["metadata"]["name"], app["spec"]
    conf = {key: str(value) for key, value in (spec.get("sparkConf") or {}).items()}
    app_labels = {
        "spark-app-selector": f"spark-{name}-0000",
        "spark-app-name": name,
        "sparkoperator.k8s.io/app-name": name,
        "sparkoperator.k8s.io/launched-by-spark-operator": "true",
        "sparkoperator.k8s.io/submission-id": f"{name}-submission",
    }
    block_manager = int(conf.get("spark.blockManager.port", DEFAULT_BLOCK_MANAGER_PORT))
    driver_ports = {
        "driver-rpc-port": (int(conf.get("spark.driver.port", DEFAULT_DRIVER_PORT)), "TCP"),
        "blockmanager": (int(conf.get("spark.driver.blockManager.port", block_manager)), "TCP"),
        "spark-ui": (int(conf.get("spark.ui.port", _SPARK_UI_DEFAULT_PORT)), "TCP"),
    }
    for port in spec["driver"].get("ports", []):
        driver_ports[port["name"]] = (int(port["containerPort"]), port.get("protocol", "TCP"))
    pods = [
        Pod(
            f"{name}-driver",
            namespace,
            {**spec["driver"].get("labels", {}), **app_labels, "spark-role": "driver"},
            driver_ports,
        )
    ]
    for number in range(1, executors + 1):
        labels = {**spec["executor"].get("labels", {}), **app_labels}
        labels |= {"spark-role": "executor", "spark-exec-id": str(number)}
        pods.append(Pod(f"{name}-exec-{number}", namespace, labels, {"blockmanager": (block_manager, "TCP")}))
    return pods


def release_pods(objects: Iterable[Mapping[str, Any]], namespace: str, executors: int = 2) -> dict[str, Pod]:
    """The pods that the rendered ``objects`` make, by name: one per Deployment, StatefulSet
    (its pod ``<name>-0``), Job and Pod, and each SparkApplication's driver ``<app>-driver`` and
    ``executors`` executors ``<app>-exec-<n>``."""
    pods: dict[str, Pod] = {}
    for obj in objects:
        kind = obj["kind"]
        if kind in {"Deployment", "Job", "Pod", "StatefulSet"}:
            name = obj["metadata"]["name"] + ("-0" if kind == "StatefulSet" else "")
            spec = obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]
            pods[name] = Pod(name, namespace, _template_labels(obj), _container_ports(spec))
        elif kind == "SparkApplication":
            pods |= {pod.name: pod for pod in _spark_pods(obj, namespace, executors)}
    return pods
