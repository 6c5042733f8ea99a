"""The drivers' ValidatingAdmissionPolicy admits their executors' pods and nothing that reads the
owner's Secret, the node or another identity.

RBAC lets the drivers' ServiceAccount create pods and cannot look inside one; the policy does.
Its CEL expressions are evaluated here with cel-python (celpy), the way the API server evaluates
them for a pod the driver creates: match conditions, then variables in order, then validations,
an expression that fails counting as a denial (failurePolicy Fail). The pods are the executor
pod that Spark and the operator's webhook build from a rendered SparkApplication, and forged
variants of it. The cluster test proves the same on a real API server (tests/cluster).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import celpy
import pytest
from celpy import celtypes

from .conftest import SECURE_KAFKA_VALUES
from .render import NAMESPACE, RELEASE, find, of_kind, render_chart
from .validation import validate_core_object

OWNER_KEY = "password"  # postgresql.auth.secretKeys.userPasswordKey by default
DRIVER = f"system:serviceaccount:{NAMESPACE}:spark-driver"
OPERATOR = "system:serviceaccount:spark-operator:spark-operator-controller"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
# Where Spark mounts its executors' configuration (a ConfigMap it creates per application).
SPARK_CONF_DIR = "/opt/spark/conf"

_CEL = celpy.Environment()


def _cel(expression: str, activation: Mapping[str, Any]) -> Any:
    """The value of one CEL expression; an error is a CELEvalError (returned or raised)."""
    try:
        return _CEL.program(_CEL.compile(expression)).evaluate(dict(activation))
    except celpy.CELEvalError as error:
        return error


def denials(
    policy: Mapping[str, Any], pod: Mapping[str, Any], username: str = DRIVER, namespace: str = NAMESPACE
) -> list[str] | None:
    """The messages of the validations that deny ``pod``, created by ``username`` in ``namespace``:
    [] when admitted, None when the policy does not apply to that request."""
    spec = policy["spec"]
    selector = spec["matchConstraints"]["namespaceSelector"]["matchLabels"]
    if selector != {"kubernetes.io/metadata.name": namespace}:
        return None
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(dict(pod)),
        "request": celpy.json_to_cel({"operation": "CREATE", "userInfo": {"username": username}}),
    }
    for condition in spec.get("matchConditions", []):
        if _cel(condition["expression"], activation) != celtypes.BoolType(True):
            return None
    variables: dict[str, Any] = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()})
        variables[variable["name"]] = _cel(variable["expression"], activation)
    activation["variables"] = celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()})
    return [
        validation["message"]
        for validation in spec["validations"]
        if _cel(validation["expression"], activation) != celtypes.BoolType(True)
    ]


def the_policy(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (policy,) = of_kind(objects, "ValidatingAdmissionPolicy")
    return policy


def executor_pod(app: Mapping[str, Any]) -> dict[str, Any]:
    """The executor pod of ``app`` as admission sees it when the driver creates it.

    Spark builds it from the executor's pod template (its container's ephemeral storage), the
    Spark conf the operator derives (image, ServiceAccount, the spark-local-dir-* volume) and its
    own additions (conf ConfigMap, SPARK_* env); the operator's webhook, which runs before any
    validating admission, adds the executor's env, the volumes it mounts and the security
    contexts.
    """
    spec, executor = app["spec"], app["spec"]["executor"]
    mounted = {mount["name"] for mount in executor.get("volumeMounts", [])}
    (template,) = executor["template"]["spec"]["containers"]
    container = {
        **copy.deepcopy(template),
        "image": spec["image"],
        "imagePullPolicy": spec["imagePullPolicy"],
        "args": ["executor"],
        "env": [
            {"name": "SPARK_EXECUTOR_ID", "value": "1"},
            {
                "name": "SPARK_EXECUTOR_POD_IP",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}},
            },
            *copy.deepcopy(executor.get("env", [])),
        ],
        "ports": [{"name": "blockmanager", "containerPort": 7079}],
        "volumeMounts": [
            {"name": "spark-conf-volume-exec", "mountPath": SPARK_CONF_DIR},
            *copy.deepcopy(executor.get("volumeMounts", [])),
        ],
        "securityContext": copy.deepcopy(executor["securityContext"]),
    }
    name = app["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-exec-1", "namespace": NAMESPACE, "labels": {"spark-role": "executor"}},
        "spec": {
            "serviceAccountName": executor["serviceAccount"],
            "restartPolicy": "Never",
            "securityContext": copy.deepcopy(executor["podSecurityContext"]),
            "containers": [container],
            "volumes": [
                {"name": "spark-conf-volume-exec", "configMap": {"name": f"spark-exec-{name}-conf-map"}},
                *(copy.deepcopy(v) for v in spec["volumes"] if v["name"] in mounted),
            ],
        },
    }


def forged(pod: Mapping[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """A copy of ``pod`` with ``change`` applied to its spec."""
    copied = copy.deepcopy(dict(pod))
    change(copied["spec"])
    return copied


def _secret_env(secret: str, key: str) -> dict[str, Any]:
    return {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _side_container(**fields: Any) -> dict[str, Any]:
    return {"name": "side", "image": "busybox:1.36", **fields}


# Each forged executor pod breaks exactly one rule: (what it does, the change, the start of the
# one message that denies it).
SECRET_MESSAGE = "a pod of the Spark driver reads of Secrets only what the executors need"
VOLUME_MESSAGE = (
    "a pod of the Spark driver mounts only emptyDir, configMap, downwardAPI, projected and secret"
)
FORGERIES: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    (
        "a volume of the whole PostgreSQL Secret",
        lambda s: s["volumes"].append({"name": "stolen", "secret": {"secretName": "postgresql"}}),
        SECRET_MESSAGE,
    ),
    (
        "a volume of the owner's key of the PostgreSQL Secret",
        lambda s: s["volumes"].append(
            {
                "name": "stolen",
                "secret": {"secretName": "postgresql", "items": [{"key": OWNER_KEY, "path": "p"}]},
            }
        ),
        SECRET_MESSAGE,
    ),
    (
        "an env of the owner's key",
        lambda s: s["containers"][0]["env"].append(_secret_env("postgresql", OWNER_KEY)),
        SECRET_MESSAGE,
    ),
    (
        "an env of the reader's key",
        lambda s: s["containers"][0]["env"].append(_secret_env("postgresql", "reader-password")),
        SECRET_MESSAGE,
    ),
    (
        "an env of the writer's key name in another Secret",
        lambda s: s["containers"][0]["env"].append(_secret_env("dashboard", "writer-password")),
        SECRET_MESSAGE,
    ),
    (
        "an init container with the owner's key",
        lambda s: s.setdefault("initContainers", []).append(
            _side_container(env=[_secret_env("postgresql", OWNER_KEY)])
        ),
        SECRET_MESSAGE,
    ),
    (
        "an ephemeral container with the owner's key",
        lambda s: s.setdefault("ephemeralContainers", []).append(
            _side_container(env=[_secret_env("postgresql", OWNER_KEY)])
        ),
        SECRET_MESSAGE,
    ),
    (
        "an envFrom of the PostgreSQL Secret",
        lambda s: s["containers"][0].setdefault("envFrom", []).append({"secretRef": {"name": "postgresql"}}),
        SECRET_MESSAGE,
    ),
    (
        "a projected volume with the PostgreSQL Secret",
        lambda s: s["volumes"].append(
            {"name": "stolen", "projected": {"sources": [{"secret": {"name": "postgresql"}}]}}
        ),
        SECRET_MESSAGE,
    ),
    (
        "a hostPath volume",
        lambda s: s["volumes"].append({"name": "node", "hostPath": {"path": "/"}}),
        VOLUME_MESSAGE,
    ),
    (
        "the database's claim",
        lambda s: s["volumes"].append(
            {"name": "data", "persistentVolumeClaim": {"claimName": "data-postgresql-0"}}
        ),
        VOLUME_MESSAGE,
    ),
    (
        "a privileged container",
        lambda s: s["containers"][0]["securityContext"].update(privileged=True),
        "a pod of the Spark driver runs no privileged container and adds no capability",
    ),
    (
        "a privileged init container",
        lambda s: s.setdefault("initContainers", []).append(
            _side_container(securityContext={"privileged": True})
        ),
        "a pod of the Spark driver runs no privileged container and adds no capability",
    ),
    (
        "an added capability",
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        "a pod of the Spark driver runs no privileged container and adds no capability",
    ),
    (
        "the node's network",
        lambda s: s.update(hostNetwork=True),
        "a pod of the Spark driver shares no namespace of the node",
    ),
    (
        "the node's PIDs",
        lambda s: s.update(hostPID=True),
        "a pod of the Spark driver shares no namespace of the node",
    ),
    (
        "the node's IPC",
        lambda s: s.update(hostIPC=True),
        "a pod of the Spark driver shares no namespace of the node",
    ),
    (
        "the driver's own ServiceAccount",
        lambda s: s.update(serviceAccountName="spark-driver"),
        "a pod of the Spark driver runs as the executors' ServiceAccount spark-executor",
    ),
    (
        "the namespace's default ServiceAccount",
        lambda s: s.update(serviceAccountName="default"),
        "a pod of the Spark driver runs as the executors' ServiceAccount spark-executor",
    ),
]


def test_should_render_the_policy_and_its_binding_by_default_and_validate_them_strictly(
    default_objects: list[dict],
) -> None:
    """One ValidatingAdmissionPolicy and its Deny binding (admissionregistration.k8s.io/v1), valid
    against the strict schemas of the kind node's Kubernetes, failing closed."""
    policy = the_policy(default_objects)
    (binding,) = of_kind(default_objects, "ValidatingAdmissionPolicyBinding")
    for obj in (policy, binding):
        assert obj["apiVersion"] == "admissionregistration.k8s.io/v1"
        validate_core_object(obj)
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert all(v["message"] and v["reason"] == "Forbidden" for v in policy["spec"]["validations"])


def test_should_leave_the_policy_out_when_disabled() -> None:
    """spark.admissionPolicy.enable=false (clusters older than 1.30) renders neither object."""
    objects = render_chart({"spark": {"admissionPolicy": {"enable": False}}})
    assert [o for o in objects if o["kind"] in POLICY_KINDS] == []


def test_should_name_the_cluster_scoped_objects_after_the_release_and_its_namespace() -> None:
    """Both names hold the release and the namespace (cluster-scoped objects of two releases never
    clash), stay DNS labels of at most 63 characters, and the policy matches only pods of the
    release's namespace."""
    names = {}
    for release, namespace in ((RELEASE, NAMESPACE), ("other", NAMESPACE), (RELEASE, "streaming"),
                               ("r" * 53, "n" * 63), ("r" * 53, "n" * 62 + "m")):  # fmt: skip
        objects = render_chart(release=release, namespace=namespace)
        policy = the_policy(objects)
        name = policy["metadata"]["name"]
        assert find(objects, "ValidatingAdmissionPolicyBinding", name)
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()
        if len(f"{release}-{namespace}-spark-driver-pods") <= 63:
            assert name == f"{release}-{namespace}-spark-driver-pods"
        selector = policy["spec"]["matchConstraints"]["namespaceSelector"]
        assert selector == {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        names[(release, namespace)] = name
    assert len(set(names.values())) == len(names)


def test_should_check_creates_and_updates_of_pods_and_their_ephemeral_containers(
    default_objects: list[dict],
) -> None:
    """The policy matches CREATE and UPDATE of pods, and of pods/ephemeralcontainers (the way to
    add a container to a running pod)."""
    (rule,) = the_policy(default_objects)["spec"]["matchConstraints"]["resourceRules"]
    assert rule == {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["pods", "pods/ephemeralcontainers"],
    }


def test_should_build_executor_pods_that_are_valid_pods(rendered: list[dict]) -> None:
    """The executor pods this module checks are strictly valid Pods (so the policy is tried on
    what the API server would hold), with every volume they mount."""
    for app in of_kind(rendered, "SparkApplication"):
        pod = executor_pod(app)
        validate_core_object(pod)
        volumes = {v["name"] for v in pod["spec"]["volumes"]}
        assert {m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]} <= volumes


def test_should_admit_the_executor_pods_of_both_jobs(rendered: list[dict]) -> None:
    """Each job's executor pod, as its driver creates it, passes every validation, with every set
    of values (the writer's key, and over SASL_SSL the SASL password and the Kafka CA's volume)."""
    policy = the_policy(rendered)
    for app in of_kind(rendered, "SparkApplication"):
        assert denials(policy, executor_pod(app)) == [], app["metadata"]["name"]


def test_should_admit_the_executors_kafka_secrets_only_as_the_executors_use_them() -> None:
    """Over SASL_SSL the executors read the SASL password and the CA key: that much is admitted,
    the whole CA Secret (another key could be a private key) and another key are not."""
    objects = render_chart(SECURE_KAFKA_VALUES)
    policy, app = the_policy(objects), find(objects, "SparkApplication", "enrichment")
    pod = executor_pod(app)
    sasl = SECURE_KAFKA_VALUES["externalKafka"]["sasl"]
    ca = SECURE_KAFKA_VALUES["externalKafka"]["tls"]
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": sasl["existingSecret"],
        "key": sasl["passwordKey"],
    }
    assert denials(policy, pod) == []

    def whole_ca_secret(spec: dict[str, Any]) -> None:
        (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == ca["caSecret"]]
        del volume["secret"]["items"]

    def another_ca_key(spec: dict[str, Any]) -> None:
        (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == ca["caSecret"]]
        volume["secret"]["items"].append({"key": "tls.key", "path": "tls.key"})

    for change in (
        whole_ca_secret,
        another_ca_key,
        lambda s: s["containers"][0]["env"].append(_secret_env(sasl["existingSecret"], "other")),
    ):
        messages = denials(policy, forged(pod, change))
        assert messages and all(m.startswith(SECRET_MESSAGE) for m in messages), messages


@pytest.mark.parametrize(("what", "change", "message"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_should_deny_a_driver_pod_that_breaks_one_rule(
    default_objects: list[dict], what: str, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    """An executor pod changed in one way that reads a Secret the executors do not, or the node,
    or runs as another account, is denied with the message of that rule alone."""
    policy = the_policy(default_objects)
    pod = forged(executor_pod(find(default_objects, "SparkApplication", "aggregation")), change)
    messages = denials(policy, pod)
    assert messages is not None and len(messages) == 1, (what, messages)
    assert messages[0].startswith(message), (what, messages)


def test_should_name_what_the_executors_may_read_in_the_secret_messages(default_objects: list[dict]) -> None:
    """The denial says which Secret keys a driver's pod may read: only the writer's."""
    policy = the_policy(default_objects)
    pod = forged(
        executor_pod(find(default_objects, "SparkApplication", "enrichment")),
        lambda s: s["containers"][0]["env"].append(_secret_env("postgresql", OWNER_KEY)),
    )
    (message,) = denials(policy, pod)
    assert "(env postgresql/writer-password; volume none)" in message


def test_should_leave_pods_of_other_users_and_namespaces_alone(default_objects: list[dict]) -> None:
    """Only pods the drivers' ServiceAccount creates in the release's namespace are checked: the
    operator's driver pods, a user's pods, another namespace's drivers are not this policy's."""
    policy = the_policy(default_objects)
    stealing = forged(
        executor_pod(find(default_objects, "SparkApplication", "enrichment")),
        lambda s: s["volumes"].append({"name": "stolen", "secret": {"secretName": "postgresql"}}),
    )
    assert denials(policy, stealing) != []
    assert denials(policy, stealing, username=OPERATOR) is None
    assert denials(policy, stealing, username="kubernetes-admin") is None
    assert denials(policy, stealing, username=f"system:serviceaccount:{NAMESPACE}:spark-executor") is None
    assert denials(policy, stealing, username="system:serviceaccount:other:spark-driver") is None
    assert denials(policy, stealing, namespace="other") is None


def test_should_apply_to_the_drivers_own_service_account_when_one_is_given() -> None:
    """With spark.serviceAccount set, the drivers run as it and the policy checks its pods."""
    objects = render_chart({"spark": {"serviceAccount": "my-driver"}})
    policy, app = the_policy(objects), find(objects, "SparkApplication", "enrichment")
    assert app["spec"]["driver"]["serviceAccount"] == "my-driver"
    stealing = forged(executor_pod(app), lambda s: s.update(hostNetwork=True))
    assert denials(policy, stealing, username=f"system:serviceaccount:{NAMESPACE}:my-driver")
    assert denials(policy, stealing) is None  # spark-driver is not the drivers' account then


def test_should_fail_closed_on_a_pod_an_expression_cannot_read(default_objects: list[dict]) -> None:
    """A field missing where the policy looks never admits a pod: an env var whose secretKeyRef
    has no key makes its expression fail (a denial, failurePolicy Fail), and a secret volume
    without a Secret's name fails its has() guard."""
    policy = the_policy(default_objects)
    pod = executor_pod(find(default_objects, "SparkApplication", "enrichment"))
    broken = forged(
        pod, lambda s: s["containers"][0]["env"].append({"name": "X", "valueFrom": {"secretKeyRef": {}}})
    )
    assert denials(policy, broken)
    nameless = forged(pod, lambda s: s["volumes"].append({"name": "s", "secret": {"items": []}}))
    assert denials(policy, nameless)
