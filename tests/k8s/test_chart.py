"""The chart lints strictly, renders with default and custom values, and its schema bites."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.migrations import READER_PRIVILEGES, WRITER_PRIVILEGES

from .conftest import CUSTOM_VALUES, EXTERNAL_KAFKA_VALUES
from .render import (
    CHART_DIR,
    KUBE_VERSION,
    HelmError,
    all_containers,
    containers,
    env_of,
    find,
    of_kind,
    render_chart,
    render_notes,
    run_helm,
    spark_pods,
)

SCHEMA_FILE = CHART_DIR / "values.schema.json"
VALUES_FILE = CHART_DIR / "values.yaml"


def test_should_pass_helm_lint_strict_for_the_kind_node_version() -> None:
    """`helm lint --strict` (warnings are errors) passes against the kind node's Kubernetes."""
    output = run_helm("lint", "--strict", str(CHART_DIR), "--kube-version", KUBE_VERSION)
    assert "1 chart(s) linted, 0 chart(s) failed" in output


@pytest.mark.parametrize("values", [CUSTOM_VALUES, EXTERNAL_KAFKA_VALUES], ids=["custom", "external kafka"])
def test_should_pass_helm_lint_strict_with_other_values(tmp_path: Path, values: dict[str, Any]) -> None:
    """`helm lint --strict` also passes with the non-default values and with an external broker."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values), encoding="utf-8")
    output = run_helm(
        "lint", "--strict", str(CHART_DIR), "--kube-version", KUBE_VERSION, "-f", str(values_file)
    )
    assert "0 chart(s) failed" in output


def test_should_render_every_component_with_default_values(default_objects: list[dict]) -> None:
    """The default install holds the broker, Console, PostgreSQL, producer and both Spark jobs."""
    kinds_and_names = {(o["kind"], o["metadata"]["name"]) for o in default_objects}
    assert {
        ("StatefulSet", "redpanda"),
        ("Service", "redpanda"),
        ("Service", "redpanda-hl"),
        ("Job", "kafka-topic"),
        ("Deployment", "console"),
        ("Service", "console"),
        ("ConfigMap", "console"),
        ("StatefulSet", "postgresql"),
        ("Service", "postgresql"),
        ("Secret", "postgresql"),
        ("Secret", "dashboard"),
        ("Job", "postgresql-migrate"),
        ("Deployment", "producer"),
        ("SparkApplication", "enrichment"),
        ("SparkApplication", "aggregation"),
        ("PersistentVolumeClaim", "enrichment-checkpoints"),
        ("PersistentVolumeClaim", "aggregation-checkpoints"),
        ("Pod", "test-tickets-reach-postgresql"),
    } <= kinds_and_names


def test_should_apply_custom_partitions_replicas_rate_and_resources(
    custom_objects: list[dict],
) -> None:
    """Custom values reach the topic Job, the producer and the Spark executors."""
    topic_env = env_of(containers(find(custom_objects, "Job", "kafka-topic"))[0])
    assert topic_env["TOPIC_PARTITIONS"] == "12"

    producer = find(custom_objects, "Deployment", "producer")
    assert producer["spec"]["replicas"] == 3
    producer_env = env_of(containers(producer)[0])
    assert producer_env["PRODUCER_RATE"] == "250"
    assert producer_env["TOPIC_PARTITIONS"] == "12"
    assert containers(producer)[0]["resources"] == CUSTOM_VALUES["producer"]["resources"]

    redpanda = containers(find(custom_objects, "StatefulSet", "redpanda"))[0]
    assert redpanda["resources"] == CUSTOM_VALUES["redpanda"]["resources"]
    assert "--memory=2G" in redpanda["args"]

    enrichment = find(custom_objects, "SparkApplication", "enrichment")["spec"]
    assert enrichment["executor"]["instances"] == 4
    assert enrichment["executor"]["cores"] == 2
    assert enrichment["executor"]["memory"] == "2g"
    assert enrichment["driver"]["memory"] == "1g"
    # Large integers stay integers (Helm reads numbers as floats: 2e+06 would break int()).
    assert env_of(enrichment["driver"])["MAX_OFFSETS_PER_TRIGGER"] == "2000000"
    aggregation = find(custom_objects, "SparkApplication", "aggregation")["spec"]
    assert aggregation["executor"]["instances"] == 2


def test_should_use_an_existing_secret_instead_of_generating_one(
    custom_objects: list[dict],
) -> None:
    """With postgresql.auth.existingSecret and dashboard.auth.existingSecret no Secret is
    rendered and every reference reads one of its keys: the owner's password (db-password), the
    writer's (db-writer-password), the reader's (db-reader-password) or the dashboard page's
    (dashboard-login)."""
    assert of_kind(custom_objects, "Secret") == []
    refs = [
        value["secretKeyRef"]
        for obj in custom_objects
        for holder in [*all_containers(obj), *spark_pods(obj)]
        for value in env_of(holder).values()
        if isinstance(value, dict)
    ]
    assert len(refs) >= 10  # postgresql, migrate (3), two drivers and their waits, helm test, dashboard
    assert {ref["name"] for ref in refs} == {"pipeline-db"}
    keys = {"db-admin-password", "db-password", "db-writer-password", "db-reader-password", "dashboard-login"}
    assert {ref["key"] for ref in refs} == keys


def test_should_generate_a_kept_password_secret_when_none_is_given(
    default_objects: list[dict],
) -> None:
    """The generated Secret holds four random passwords, the superuser's, the owner's, the
    writer's and the reader's, and survives `helm uninstall`."""
    secret = find(default_objects, "Secret", "postgresql")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"admin-password", "password", "writer-password", "reader-password"}
    passwords = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in passwords.values()), passwords.keys()
    assert len(set(passwords.values())) == 4


def _secret_data_on_upgrade(
    tmp_path: Path, existing: dict[str, str], component: str = "postgresql"
) -> dict[str, str]:
    """Render a component's Secret as an upgrade would: in a copy of the chart, the `lookup` of
    the Secret returns one whose data is ``existing`` (base64 values), as the cluster would."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    path = chart / "templates" / component / "secret.yaml"
    text = path.read_text(encoding="utf-8")
    call = 'lookup "v1" "Secret" .Release.Namespace $name'
    assert call in text
    stub = '(dict "data" (dict ' + " ".join(f'"{k}" "{v}"' for k, v in existing.items()) + "))"
    path.write_text(text.replace(call, stub), encoding="utf-8")
    return find(render_chart(chart_dir=chart), "Secret", component)["data"]


def test_should_keep_the_passwords_of_the_secret_on_an_upgrade(tmp_path: Path) -> None:
    """Should keep the superuser's, the owner's, the writer's and the reader's passwords that
    the Secret holds."""
    existing = {
        "admin-password": _b64("superuser-secret"),
        "password": _b64("owner-secret"),
        "writer-password": _b64("writer-secret"),
        "reader-password": _b64("reader-secret"),
    }
    assert _secret_data_on_upgrade(tmp_path, existing) == existing


def test_should_generate_the_dashboard_password_once_and_keep_it(
    default_objects: list[dict], tmp_path: Path
) -> None:
    """Should generate a random password in the Secret `dashboard`, deleted by `helm uninstall`
    (no volume depends on it), and keep the one the Secret holds on an upgrade."""
    secret = find(default_objects, "Secret", "dashboard")
    assert "helm.sh/resource-policy" not in secret["metadata"].get("annotations", {})
    assert set(secret["data"]) == {"dashboard-password"}
    assert re.fullmatch(r"[A-Za-z0-9]{32}", base64.b64decode(secret["data"]["dashboard-password"]).decode())
    existing = {"dashboard-password": _b64("page-secret")}
    assert _secret_data_on_upgrade(tmp_path, existing, "dashboard") == existing


@pytest.mark.parametrize(
    ("kept", "added"),
    [
        (["password"], ["writer-password", "reader-password", "admin-password"]),
        (["password", "writer-password"], ["reader-password", "admin-password"]),
        (["password", "writer-password", "reader-password"], ["admin-password"]),
    ],
    ids=["before the writer role", "before the reader role", "before the superuser postgres"],
)
def test_should_add_only_the_missing_passwords_on_an_upgrade(
    tmp_path: Path, kept: list[str], added: list[str]
) -> None:
    """Should keep the passwords of a Secret from an older chart, and generate the roles'
    passwords it lacks (the migrate Job then creates those roles with them)."""
    existing = {key: _b64(f"{key}-kept") for key in kept}
    data = _secret_data_on_upgrade(tmp_path, existing)
    assert {key: data[key] for key in kept} == existing
    assert set(data) == {*kept, *added}
    for key in added:
        assert re.fullmatch(r"[A-Za-z0-9]{32}", base64.b64decode(data[key]).decode()), key


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_should_keep_plain_passwords_out_of_the_values(default_objects: list[dict]) -> None:
    """No env var carries a password as a plain value; DATABASE_URL has no password in it."""
    for obj in default_objects:
        for holder in [*all_containers(obj), *spark_pods(obj)]:
            for name, value in env_of(holder).items():
                if "PASSWORD" in name:
                    assert isinstance(value, dict) and "secretKeyRef" in value, name
                if name == "DATABASE_URL":
                    assert re.fullmatch(r"postgresql://[a-z_]+@[^:/@]+:\d+/[a-z_]+", value)


def test_should_render_the_release_namespace_into_every_host(tmp_path: Path) -> None:
    """Installing into another namespace changes every client address accordingly."""
    objects = render_chart(namespace="pipeline")
    env = env_of(containers(find(objects, "Deployment", "producer"))[0])
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "redpanda.pipeline.svc.cluster.local:9092"


def test_should_leave_out_optional_components_when_disabled() -> None:
    """The enable toggles remove Console, the producer, the dashboard and the Spark jobs."""
    objects = render_chart(
        {
            "console": {"enable": False},
            "producer": {"enable": False},
            "dashboard": {"enable": False},
            "spark": {"enable": False},
        }
    )
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "console") not in names
    assert ("Deployment", "producer") not in names
    assert ("Deployment", "dashboard") not in names and ("Service", "dashboard") not in names
    assert of_kind(objects, "SparkApplication") == []
    assert of_kind(objects, "PersistentVolumeClaim") == []
    assert ("StatefulSet", "redpanda") in names


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"producer": {"replicas": -1}}, "a negative replica count"),
        ({"producer": {"ratePerReplica": "fast"}}, "a rate that is not a number"),
        ({"producer": {"replica": 3}}, "a misspelt key"),
        ({"dashboard": {"refreshSeconds": 0.1}}, "a dashboard refresh faster than its setting allows"),
        ({"dashboard": {"port": 0}}, "a dashboard port out of range"),
        ({"topic": {"partitions": 0}}, "a topic without partitions"),
        ({"redpanda": {"topic": {"partitions": 6}}}, "the topic under its former key redpanda.topic"),
        ({"redpanda": {"image": {"tag": "latest"}}}, "an unpinned image tag"),
        ({"postgresql": {"auth": {"password": "hunter2"}}}, "a plain-text password"),
        ({"postgresql": {"auth": {"writerPassword": "hunter2"}}}, "a plain-text writer password"),
        ({"postgresql": {"auth": {"writerUsername": "Tickets-Writer"}}}, "a role that is no identifier"),
        ({"postgresql": {"auth": {"secretKeys": {"writerPasswordKey": ""}}}}, "an empty writer key"),
        ({"postgresql": {"auth": {"readerUsername": "1reader"}}}, "a reader role that is no identifier"),
        ({"postgresql": {"auth": {"readerPassword": "hunter2"}}}, "a plain-text reader password"),
        ({"dashboard": {"auth": {"password": "hunter2"}}}, "a plain-text dashboard password"),
        ({"dashboard": {"auth": {"username": "a:b"}}}, "a dashboard user with a colon"),
        ({"dashboard": {"auth": {"username": ""}}}, "no dashboard user"),
        ({"spark": {"enrichment": {"executor": {"memory": "512MB"}}}}, "a non-Spark memory"),
        ({"spark": {"enrichment": {"executor": {"instances": 0}}}}, "no executors"),
        ({"spark": {"sparkConf": {"spark.ui.port": "4042"}}}, "a UI port outside the apps"),
        ({"producer": {"resources": {"limits": None}}}, "a container without limits"),
        ({"console": {"resources": {"requests": {"cpus": "1"}}}}, "a misspelt resource"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_should_reject_invalid_values_at_render_time(values: dict[str, Any], reason: str) -> None:
    """values.schema.json makes `helm template`/`install` fail on an invalid value."""
    with pytest.raises(HelmError) as failure:
        render_chart(values)
    assert "schema" in failure.value.stderr.lower(), reason


def test_should_document_every_values_key_and_nothing_else() -> None:
    """Each leaf of values.yaml has a `## @param <path>` line, and each such line a key."""
    values = yaml.safe_load(VALUES_FILE.read_text(encoding="utf-8"))
    schema = _load_schema()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", VALUES_FILE.read_text(), re.M))
    assert documented == set(_leaf_paths(values, schema, schema))


def test_should_type_every_values_object_strictly_in_the_schema() -> None:
    """Every object of values.schema.json with properties refuses unknown keys."""
    schema = _load_schema()

    def check(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, path
            for key, child in node.items():
                check(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                check(child, f"{path}/{index}")

    check(schema, "#")


def test_should_print_port_forwards_and_psql_in_the_notes() -> None:
    """NOTES.txt gives the documented port-forward commands and how to query PostgreSQL."""
    notes = render_notes()
    for expected in (
        "kubectl port-forward -n default svc/console 8080:8080",
        "kubectl port-forward -n default svc/enrichment-ui-svc 4040:4040",
        "kubectl port-forward -n default svc/aggregation-ui-svc 4041:4041",
        "kubectl exec -it -n default postgresql-0 -- psql -U tickets -d tickets",
        "kubectl get secret -n default postgresql -o jsonpath='{.data.admin-password}'",
        "kubectl get secret -n default postgresql -o jsonpath='{.data.password}'",
        "kubectl get secret -n default postgresql -o jsonpath='{.data.writer-password}'",
        "kubectl get secret -n default postgresql -o jsonpath='{.data.reader-password}'",
        "kubectl scale deploy producer -n default --replicas 3",
        "SELECT count(*) FROM tickets;",
    ):
        assert expected in notes


def test_should_state_in_the_notes_exactly_what_each_role_may_do() -> None:
    """NOTES.txt says the jobs use the writer role and the dashboard the reader role, each with
    exactly core.migrations' privileges."""
    notes = render_notes()
    writer_part, reader_part = notes.split("The dashboard connects as the read-only role tickets_reader")
    assert "The Spark jobs connect as the least-privileged role tickets_writer" in writer_part
    assert "no DDL, no TRUNCATE but of staged rows, no DELETE but of expired dead letters" in writer_part
    assert _stated_privileges(writer_part) == WRITER_PRIVILEGES
    assert _stated_privileges(reader_part) == READER_PRIVILEGES


def _stated_privileges(notes: str) -> dict[str, tuple[str, ...]]:
    """{table: privileges} from NOTES.txt's lines "  SELECT, INSERT  on t1, t2"."""
    stated: dict[str, tuple[str, ...]] = {}
    for privileges, tables in re.findall(r"^ +((?:[A-Z]+, )*[A-Z]+) +on (.+)$", notes, re.M):
        for table in tables.split(", "):
            stated[table] = tuple(privileges.split(", "))
    return stated


def _load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


# Values documented as one block (requests and limits of a container), not key by key.
_ONE_BLOCK_REFS = {"#/definitions/resources"}


def _leaf_paths(
    values: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted paths of the values that the schema types as one value (not as an object of keys)."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].removeprefix("#/definitions/")]
    paths: list[str] = []
    for key, value in values.items():
        child = schema["properties"][key]
        path = f"{prefix}.{key}" if prefix else key
        nested = child
        while "$ref" in nested and nested["$ref"] not in _ONE_BLOCK_REFS:
            nested = root["definitions"][nested["$ref"].removeprefix("#/definitions/")]
        if isinstance(value, dict) and "properties" in nested and "$ref" not in nested:
            paths += _leaf_paths(value, nested, root, path)
        else:
            paths.append(path)
    return paths
