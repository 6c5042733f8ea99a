"""The Kubernetes commands of README and docs/kubernetes.md name exactly what the chart renders
and the Makefile offers."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from core.migrations import READER_PRIVILEGES, WRITER_PRIVILEGES
from tests.docs_text import KUBERNETES_COMMANDS_TEXT, KUBERNETES_DOC, tear_down_commands

from .render import REPO_ROOT, containers, find, of_kind, render_chart


def commands(prefix: str) -> list[str]:
    """Every line of the docs (inside code blocks or backticks) that starts with `prefix`."""
    found = re.findall(rf"(?:^|`){re.escape(prefix)}[^`\n#]*", KUBERNETES_COMMANDS_TEXT, re.M)
    return [c.lstrip("`").strip() for c in found]


def test_should_port_forward_to_services_and_ports_the_chart_renders():
    """Each `kubectl port-forward svc/NAME LOCAL:REMOTE` targets a rendered Service port, and
    each `deploy/NAME LOCAL:REMOTE` a container port of the rendered Deployment."""
    objects = render_chart()
    forwards = commands("kubectl port-forward")
    assert {f.split()[2] for f in forwards} >= {
        "svc/console",
        "svc/enrichment-ui-svc",
        "svc/aggregation-ui-svc",
        "svc/dashboard",
    }
    for forward in forwards:
        target, ports = forward.split()[2], forward.split()[3]
        service, remote = target.removeprefix("svc/"), int(ports.split(":")[1])
        if target.startswith("deploy/"):
            deployment = find(objects, "Deployment", target.removeprefix("deploy/"))
            declared = [p["containerPort"] for c in containers(deployment) for p in c.get("ports", [])]
            assert remote in declared, forward
        elif service.endswith("-ui-svc"):
            # Created by the operator from the app's spark.ui.port while the driver runs.
            app = find(objects, "SparkApplication", service.removesuffix("-ui-svc"))
            assert int(app["spec"]["sparkConf"]["spark.ui.port"]) == remote
        else:
            rendered = find(objects, "Service", service)
            assert remote in [p["port"] for p in rendered["spec"]["ports"]]


def test_should_scale_the_deployment_named_producer():
    """`kubectl scale deploy producer` names the rendered producer Deployment."""
    scales = commands("kubectl scale deploy")
    assert scales and all(s.split()[3] == "producer" for s in scales)
    assert find(render_chart(), "Deployment", "producer")


def test_should_exec_into_the_postgresql_pod_and_read_its_secret():
    """The psql and password commands name the StatefulSet's first pod and the Secret."""
    objects = render_chart()
    assert find(objects, "StatefulSet", "postgresql")
    assert "kubectl exec -it postgresql-0" in KUBERNETES_COMMANDS_TEXT
    assert find(objects, "Secret", "postgresql")
    assert "kubectl get secret postgresql" in KUBERNETES_COMMANDS_TEXT


def test_should_read_each_password_from_the_keys_of_the_secret():
    """docs/kubernetes.md reads the superuser's, the owner's, the writer's and the reader's
    password from the Secret's keys."""
    secret = find(render_chart(), "Secret", "postgresql")
    assert set(secret["data"]) == {"admin-password", "password", "writer-password", "reader-password"}
    for key in secret["data"]:
        assert key in secret["data"]
        command = f"kubectl get secret postgresql -o jsonpath='{{.data.{key}}}' | base64 -d"
        assert command in KUBERNETES_COMMANDS_TEXT


def test_should_state_exactly_what_each_role_may_do():
    """The Kubernetes section lists core.migrations' WRITER_PRIVILEGES for the jobs' role and
    READER_PRIVILEGES for the dashboard's."""
    _, writer_part = KUBERNETES_DOC.split("`tickets_writer` may:\n", 1)
    writer_part, reader_part = writer_part.split("`tickets_reader` may:\n", 1)
    assert _stated_privileges(writer_part) == WRITER_PRIVILEGES
    assert "no DDL, no TRUNCATE but of staged rows, no DELETE but of expired dead letters" in writer_part
    assert _stated_privileges(reader_part.strip().split("\n\n", 1)[0]) == READER_PRIVILEGES


def _stated_privileges(text: str) -> dict[str, tuple[str, ...]]:
    """{table: privileges} from a docs list: "- SELECT and INSERT on `t1` and `t2`;"."""
    stated: dict[str, tuple[str, ...]] = {}
    for privileges, tables in re.findall(r"^- ([A-Z]+(?:(?:, | and )[A-Z]+)*) on (`.+`);$", text, re.M):
        for table in re.findall(r"`(\w+)`", tables):
            stated[table] = tuple(re.split(r", | and ", privileges))
    return stated


def test_should_install_the_chart_with_the_release_name_of_the_readme():
    """`helm install ticket-pipeline charts/` is the command, and charts/ is the chart."""
    assert "helm install ticket-pipeline charts/" in KUBERNETES_COMMANDS_TEXT
    assert (REPO_ROOT / "charts" / "Chart.yaml").is_file()


def _set_values(assignment: str) -> dict[str, Any]:
    """`a.b=v` (helm --set syntax, `\\,` an escaped comma) as nested values {"a": {"b": v}}."""
    path, _, raw = assignment.partition("=")
    value: Any = raw.replace("\\,", ",") if "\\," in raw else yaml.safe_load(raw)
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


# Placeholders such as `existingSecret=<name>` are prose, not values to render.
SET_PATTERN = r"--set '?([\w.]+=[^\s'`]+)"
SET_ASSIGNMENTS = sorted({a for a in re.findall(SET_PATTERN, KUBERNETES_COMMANDS_TEXT) if "<" not in a})


def _documented_set_groups() -> list[tuple[str, ...]]:
    """The --set assignments that go together: those of one documented `helm install` or
    `helm upgrade` command (its continuation lines joined), and each other one on its own."""
    joined = re.sub(r"\\\n\s*", " ", KUBERNETES_COMMANDS_TEXT)
    commands = [line for line in joined.splitlines() if re.search(r"helm (install|upgrade) ", line)]
    groups = {tuple(sorted(a for a in re.findall(SET_PATTERN, c) if "<" not in a)) for c in commands}
    grouped = {a for group in groups for a in group}
    groups |= {(a,) for a in SET_ASSIGNMENTS if a not in grouped}
    return sorted(group for group in groups if group)


def test_should_find_the_readme_set_assignments():
    """The docs' --set examples are found: partitions, producers, the external broker."""
    keys = {assignment.split("=")[0] for assignment in SET_ASSIGNMENTS}
    assert {"topic.partitions", "producer.replicas", "externalKafka.bootstrapServers"} <= keys


@pytest.mark.parametrize("assignments", _documented_set_groups(), ids=" ".join)
def test_should_render_every_set_of_the_readme(assignments):
    """Each documented `helm install` renders with its `--set key=value`s together, and each
    other `--set` of the Kubernetes docs on its own: every one names a value the schema accepts."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        _merge(values, _set_values(assignment))
    objects = render_chart(values)
    if any(a.startswith("externalKafka.bootstrapServers=") for a in assignments):
        assert "redpanda" not in [s["metadata"]["name"] for s in of_kind(objects, "StatefulSet")]
    if any(a.startswith("externalPostgresql.host=") for a in assignments):
        assert "postgresql" not in [s["metadata"]["name"] for s in of_kind(objects, "StatefulSet")]


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.mark.parametrize(
    "target", sorted(set(re.findall(r"(?:^|`)make ([a-z][a-z-]+)", KUBERNETES_COMMANDS_TEXT, re.M)))
)
def test_should_offer_every_make_target_the_readme_uses(target):
    """Every `make <target>` of the Kubernetes section is a target of the Makefile."""
    listed = subprocess.run(["make", "-pRrq", "-C", str(REPO_ROOT)], capture_output=True, text=True).stdout
    assert re.search(rf"^{re.escape(target)}:", listed, re.M), f"no make target {target}"


def test_should_tear_down_every_hook_object_that_helm_uninstall_leaves():
    """`helm uninstall` deletes no hook object: a hook without the `hook-succeeded` delete policy
    stays (found on a real cluster: the topic and migrate Jobs and their pods outlived the
    release). The Jobs delete themselves once they succeed; a failed one stays for its log,
    and the helm test pod stays for `helm test --logs`. docs/kubernetes.md's tear-down removes both kinds."""
    deletes_by_label = [
        command.split()[2].split(",")
        for command in tear_down_commands()
        if command.startswith("kubectl delete ")
        and "-l app.kubernetes.io/instance=ticket-pipeline" in command
    ]
    removed_kinds = {kind for kinds in deletes_by_label for kind in kinds}
    hooks = [obj for obj in render_chart() if "helm.sh/hook" in obj["metadata"].get("annotations", {})]
    assert hooks
    for hook in hooks:
        annotations = hook["metadata"]["annotations"]
        policy = annotations.get("helm.sh/hook-delete-policy", "").split(",")
        name = f"{hook['kind']}/{hook['metadata']['name']}"
        if hook["kind"] == "Job":
            assert "hook-succeeded" in policy, name
            assert "pod" in removed_kinds and "job" in removed_kinds, name  # a failed one stays
        elif "hook-succeeded" not in policy:
            assert hook["kind"].lower() in removed_kinds, name
        assert hook["metadata"]["labels"]["app.kubernetes.io/instance"] == "ticket-pipeline", name
