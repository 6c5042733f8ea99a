"""The kind bring-up files: cluster config, operator values, k8s/kind.mk, scripts, status tool."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from scripts.ops.cluster_status import (
    MISSING,
    TABLES,
    PipelineState,
    format_state,
    is_running,
    parse_counts,
    row_count_sql,
    ticket_rate,
    wait_until_running,
)

from .render import NAMESPACE, REPO_ROOT, run_make
from .validation import validate_core_object

K8S = REPO_ROOT / "k8s"
SCRIPTS = ("kind_up.sh", "kind_down.sh", "port_forward.sh", "kind_test.sh", "install_spark_operator.sh")
TOP_MAKEFILE_VARIABLES = {"VENV", "PY", "LOCAL", "JARS", "HELM", "HELM_VERSION", "PYTHON"}


def test_should_pin_the_kind_node_image_and_name_the_cluster_as_kind_mk() -> None:
    """kind-config.yaml pins kindest/node:v1.36.1 and names the cluster that kind.mk uses."""
    config = yaml.safe_load((K8S / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert [n["image"] for n in config["nodes"]] == ["kindest/node:v1.36.1"]
    kind_mk = (K8S / "kind.mk").read_text()
    assert re.search(rf"^KIND_CLUSTER := {config['name']}$", kind_mk, re.M)


def test_should_install_the_operator_with_the_webhook_for_the_release_namespace() -> None:
    """Operator values keep the webhook on and list the chart's namespace as a job namespace."""
    values = yaml.safe_load((K8S / "spark-operator-values.yaml").read_text())
    assert values["webhook"]["enable"] is True
    assert NAMESPACE in values["spark"]["jobNamespaces"]
    # The drivers run as the chart's own ServiceAccount: the operator's broad one is not made.
    assert values["spark"]["serviceAccount"]["create"] is False
    assert values["spark"]["rbac"]["create"] is False
    kind_up = (REPO_ROOT / "scripts" / "ops" / "kind_up.sh").read_text()
    assert "bash scripts/ops/install_spark_operator.sh" in kind_up
    script = (REPO_ROOT / "scripts" / "ops" / "install_spark_operator.sh").read_text()
    assert 'helm upgrade --install spark-operator "$KIND_SPARK_OPERATOR_CHART"' in script
    assert "helm repo" not in script
    assert 'values=(--values "$KIND_SPARK_OPERATOR_VALUES")' in script
    chart_values = yaml.safe_load((REPO_ROOT / "charts" / "values.yaml").read_text())
    assert chart_values["spark"]["serviceAccount"] == ""


def test_should_let_the_operator_manage_the_network_policies_of_spark_42_in_each_job_namespace() -> None:
    """Spark 4.2's spark-submit creates a NetworkPolicy per application: after its chart, the
    operator's install grants its controller exactly get, create, patch and delete on
    NetworkPolicies in each job namespace of its values, and nothing else."""
    script = (REPO_ROOT / "scripts" / "ops" / "install_spark_operator.sh").read_text()
    assert script.rstrip().endswith("kubectl apply -f k8s/spark-operator-rbac.yaml")
    objects = list(yaml.safe_load_all((K8S / "spark-operator-rbac.yaml").read_text()))
    roles = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "RoleBinding"}
    values = yaml.safe_load((K8S / "spark-operator-values.yaml").read_text())
    assert set(roles) == set(bindings) == set(values["spark"]["jobNamespaces"])
    for obj in objects:
        validate_core_object(obj)
    for namespace, role in roles.items():
        assert role["rules"] == [
            {
                "apiGroups": ["networking.k8s.io"],
                "resources": ["networkpolicies"],
                "verbs": ["get", "create", "patch", "delete"],
            }
        ]
        binding = bindings[namespace]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        # Release `spark-operator` in namespace `spark-operator` names its controller so.
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "spark-operator-controller", "namespace": "spark-operator"}
        ]


def test_should_define_no_variable_of_the_top_makefile_in_kind_mk() -> None:
    """kind.mk only defaults LOCAL and HELM (?=) and prefixes its own variables with KIND_."""
    assigned = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*([:?+]?=)", (K8S / "kind.mk").read_text(), re.M)
    for name, operator in assigned:
        if name in TOP_MAKEFILE_VARIABLES:
            assert operator == "?=", name
        else:
            assert name.startswith("KIND_"), name


def test_should_offer_the_kubernetes_targets_through_the_top_makefile() -> None:
    """`make -n` knows kind-up, kind-down, port-forward, kind-test and status."""
    for target in ("kind-up", "kind-down", "port-forward", "kind-test", "status"):
        completed = run_make("-n", target, check=False)
        assert completed.returncode == 0, (target, completed.stderr)
    assert "bash scripts/ops/port_forward.sh" in run_make("-n", "port-forward").stdout
    assert "-m scripts.ops.cluster_status --namespace default --wait" in run_make("-n", "status").stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_should_be_valid_bash(script: str) -> None:
    """Each script parses (bash -n) and, where shellcheck is installed, passes it."""
    path = REPO_ROOT / "scripts" / "ops" / script
    subprocess.run(["bash", "-n", str(path)], check=True, timeout=30)
    if shutil.which("shellcheck"):
        result = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ["kind_up.sh", "kind_down.sh"])
def test_should_refuse_to_run_outside_make(script: str) -> None:
    """Without the pins from kind.mk the scripts stop at once and say to use make."""
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "ops" / script)],
        capture_output=True, text=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "run this through 'make" in result.stderr


def _state(apps: tuple[str, str] = ("RUNNING", "RUNNING"), tickets: int = 5, at: float = 0.0):
    return PipelineState(
        applications=dict(zip(("enrichment", "aggregation"), apps, strict=True)),
        producer_ready=1,
        producer_desired=1,
        rows={TABLES[0]: tickets, TABLES[1]: 0, TABLES[2]: MISSING},
        taken_at=at,
    )


def test_should_count_rows_per_table_and_mark_missing_tables() -> None:
    """psql's 'table|count' lines become counts; a table psql did not list counts as missing."""
    sql = row_count_sql()
    assert all(f"'{table}'" in sql for table in TABLES)
    counts = parse_counts(f"{TABLES[0]}|42\n{TABLES[1]}|-1\nnoise\n")
    assert counts == {TABLES[0]: 42, TABLES[1]: MISSING, TABLES[2]: MISSING}


def test_should_call_the_pipeline_running_only_with_both_jobs_running_and_tickets() -> None:
    """RUNNING needs both SparkApplications RUNNING and at least one ticket row."""
    assert is_running(_state())
    assert not is_running(_state(apps=("RUNNING", "SUBMITTED")))
    assert not is_running(_state(tickets=0))
    assert not is_running(_state(tickets=MISSING))


def test_should_wait_until_running_and_give_up_with_the_last_state() -> None:
    """wait_until_running polls through errors and not-yet states, and times out with a message."""
    answers = iter([RuntimeError("pod not found"), _state(tickets=0), _state()])

    def snapshot() -> PipelineState:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = iter(range(100))
    assert is_running(wait_until_running(snapshot, 60, sleep=lambda _: None, clock=lambda: next(clock)))
    with pytest.raises(TimeoutError, match="not running after 3s"):
        wait_until_running(lambda: _state(tickets=0), 3, sleep=lambda _: None, clock=lambda: next(clock))


def test_should_measure_the_ticket_rate_between_two_snapshots() -> None:
    """The rate is the growth of the tickets table per second of snapshot time."""
    snapshots = iter([_state(tickets=100, at=10.0), _state(tickets=400, at=40.0)])
    assert ticket_rate(lambda: next(snapshots), 30, sleep=lambda _: None) == pytest.approx(10.0)


def test_should_print_jobs_producer_rows_and_rate() -> None:
    """The status text names both jobs, the producer, each table and the rate."""
    text = format_state(_state(), rate=12.5)
    assert "enrichment   RUNNING" in text and "aggregation  RUNNING" in text
    assert "1/1 replicas ready" in text
    assert f"{TABLES[2]:<20} table missing" in text
    assert "12.5 rows/s" in text
