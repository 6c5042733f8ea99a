"""The rendered objects fit together, and fit the code and images they run.

Host names and ports resolve to rendered Services and container ports, secrets to the Secret,
topic and tables match the ticket contract, images match what `make kind-up` builds, and the
SparkApplications run the jobs the Spark image contains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

# The ticket contract and the settings classes are the source of truth the chart must match.
from core.contract import TABLES, TOPIC
from core.kafka import PASSWORD_ENV as KAFKA_PASSWORD_ENV
from core.migrate import MigrateSettings
from core.migrations import WRITER_PRIVILEGES
from core.postgres import LIBPQ_TLS_ENV
from core.settings import load, setting_fields
from dashboard.app import HEALTH_PATH
from dashboard.settings import PASSWORD_ENV as DASHBOARD_PASSWORD_ENV
from dashboard.settings import DashboardSettings, load_settings
from jobs.settings import AggregationSettings, EnrichmentSettings
from producer.settings import ProducerSettings, TopicSettings
from scripts.ops import cluster_status

from .conftest import SECURE_KAFKA_VALUES, external_bootstrap_servers
from .render import (
    IMAGE_WORKDIR,
    NAMESPACE,
    REPO_ROOT,
    HelmError,
    all_containers,
    containers,
    env_of,
    find,
    of_kind,
    pod_spec,
    render_chart,
    run_make,
    spark_pods,
    spark_run_spec,
    walk_strings,
)

# The tables the pipeline writes for its users (TABLES also names internal bookkeeping tables).
OUTPUT_TABLES = {TABLES.tickets, TABLES.rejected, TABLES.aggregation}
JOB_SETTINGS = {"enrichment": EnrichmentSettings, "aggregation": AggregationSettings}
# Passwords are never settings (no flag, no settings field): libpq reads PGPASSWORD itself,
# core.migrate reads DATABASE_WRITER_PASSWORD and DATABASE_READER_PASSWORD from the environment,
# dashboard.settings.load_settings DASHBOARD_PASSWORD, core.kafka KAFKA_SASL_PASSWORD. The chart
# may set them only as secret references.
DATABASE_PASSWORD_ENV = {"PGPASSWORD", "DATABASE_WRITER_PASSWORD", "DATABASE_READER_PASSWORD"}
PASSWORD_ENV = {*DATABASE_PASSWORD_ENV, DASHBOARD_PASSWORD_ENV, KAFKA_PASSWORD_ENV}
# Neither are libpq's TLS variables, which it reads itself (core.postgres.LIBPQ_TLS_ENV).
LIBPQ_ENV = PASSWORD_ENV | LIBPQ_TLS_ENV
HOST = re.compile(
    r"(?P<labels>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)"
    r"\.svc\.cluster\.local(:(?P<port>\d+))?"
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# The env each application must get from the chart (its settings may declare more).
PRODUCER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS", "TICKETS_TOPIC", "TOPIC_PARTITIONS", "PRODUCER_RATE",
    "PRODUCER_COUNT", "METRICS_PORT", "BIND_HOST", "KAFKA_SECURITY_PROTOCOL",
}  # fmt: skip
TOPIC_JOB_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS", "TICKETS_TOPIC", "TOPIC_PARTITIONS", "KAFKA_CONNECT_TIMEOUT_SECONDS",
    "KAFKA_SECURITY_PROTOCOL",
}  # fmt: skip
DRIVER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS", "TICKETS_TOPIC", "DATABASE_URL", "PGPASSWORD", "CHECKPOINT_DIR",
    "SPARK_UI_PORT", "TRIGGER_INTERVAL_SECONDS", "MAX_OFFSETS_PER_TRIGGER", "METRICS_PORT", "BIND_HOST",
    "KAFKA_SECURITY_PROTOCOL",
}  # fmt: skip
DASHBOARD_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS", "TICKETS_TOPIC", "DATABASE_URL", "PGPASSWORD", "DASHBOARD_PORT",
    "DASHBOARD_REFRESH_SECONDS", "DASHBOARD_SPARK_UI_URLS", "BIND_HOST", "DASHBOARD_USER",
    DASHBOARD_PASSWORD_ENV, "KAFKA_SECURITY_PROTOCOL",
}  # fmt: skip
# What a Kafka client gets on top with externalKafka.tls and externalKafka.sasl (the CA from a Secret).
KAFKA_SECURITY_ENV = {
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_FILE",
}
UI_PORTS = {"enrichment": 4040, "aggregation": 4041}


# --- helpers -------------------------------------------------------------------------------------


def _pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def _spark_pod_workloads(app: Mapping[str, Any]) -> list[dict]:
    """A SparkApplication's driver and executor pods, shaped as workloads: their labels plus the
    spark-role label Spark adds; the driver's ports plus the UI port Spark names spark-ui."""
    ui_port = int(app["spec"]["sparkConf"]["spark.ui.port"])
    pods = []
    for role, block in (("driver", app["spec"]["driver"]), ("executor", app["spec"]["executor"])):
        ui = [{"name": "spark-ui", "containerPort": ui_port}] if role == "driver" else []
        ports = [*block.get("ports", []), *ui]
        pods.append({
            "kind": f"Spark {role}",
            "metadata": {"name": f"{app['metadata']['name']}-{role}"},
            "spec": {"template": {
                "metadata": {"labels": {**block.get("labels", {}), "spark-role": role}},
                "spec": {"containers": [{"name": f"spark-kubernetes-{role}", "ports": ports}]},
            }},
        })  # fmt: skip
    return pods


def _selected_workloads(objects: list[dict], service: Mapping[str, Any]) -> list[dict]:
    """The workloads whose pods a Service selects: Deployments, StatefulSets, Spark pods."""
    selector = service["spec"]["selector"].items()
    workloads = [w for kind in WORKLOAD_KINDS for w in of_kind(objects, kind)]
    workloads += [pod for app in of_kind(objects, "SparkApplication") for pod in _spark_pod_workloads(app)]
    return [w for w in workloads if selector <= _pod_labels(w).items()]


def _container_ports(workload: Mapping[str, Any]) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return [port for c in pod["containers"] for port in c.get("ports", [])]


def _target_port_exists(workload: Mapping[str, Any], target: int | str) -> bool:
    return any(
        port.get("name") == target or port["containerPort"] == target for port in _container_ports(workload)
    )


def _resolve(objects: list[dict], host_labels: str, port: int | None) -> str | None:
    """Return why ``<host_labels>.svc.cluster.local[:port]`` does not resolve, or None."""
    labels = host_labels.split(".")
    if len(labels) == 2:  # <service>.<namespace>
        service_name, namespace, pod = labels[0], labels[1], None
    elif len(labels) == 3:  # <pod>.<headless service>.<namespace>
        pod, service_name, namespace = labels
    else:
        return f"{host_labels}: not <service>.<namespace> nor <pod>.<service>.<namespace>"
    if namespace != NAMESPACE:
        return f"{host_labels}: namespace {namespace!r} is not the release's {NAMESPACE!r}"
    try:
        service = find(objects, "Service", service_name)
    except KeyError as error:
        return str(error)
    workloads = _selected_workloads(objects, service)
    if len(workloads) != 1:
        return f"Service {service_name} selects {len(workloads)} workloads"
    if pod is not None:
        workload = workloads[0]
        ordinal = pod.rsplit("-", 1)
        if (
            service["spec"].get("clusterIP") != "None"
            or workload["kind"] != "StatefulSet"
            or workload["spec"]["serviceName"] != service_name
            or ordinal[0] != workload["metadata"]["name"]
            or not (len(ordinal) == 2 and ordinal[1].isdigit())
            or int(ordinal[1]) >= workload["spec"]["replicas"]
        ):
            return f"{pod}: not a pod of a StatefulSet governed by headless Service {service_name}"
        if port is not None and not _target_port_exists(workload, port):
            return f"{pod}: no container port {port}"
        return None
    if port is None:
        return None
    matching = [p for p in service["spec"]["ports"] if p["port"] == port]
    if not matching:
        return f"Service {service_name} has no port {port}"
    if not _target_port_exists(workloads[0], matching[0].get("targetPort", port)):
        return f"Service {service_name}: targetPort of {port} is no container port"
    return None


def _env_holders(objects: Iterable[dict]) -> list[tuple[str, dict]]:
    """(owner, container or Spark pod block) for everything that has env."""
    return [
        (f"{obj['kind']}/{obj['metadata']['name']}", holder)
        for obj in objects
        for holder in [*all_containers(obj), *spark_pods(obj)]
    ]


# --- addresses -----------------------------------------------------------------------------------


def test_should_resolve_every_host_and_port_to_a_rendered_service(
    rendered: list[dict], values_under_test: dict | None
) -> None:
    """Each <service>.<ns>.svc.cluster.local[:port] in env, args, commands and configs exists,
    unless it is one of the external broker's bootstrap servers (the user's, not rendered)."""
    external = set(external_bootstrap_servers(values_under_test))
    found, problems = set(), []
    for obj in rendered:
        for text in walk_strings(obj):
            for match in HOST.finditer(text):
                if match[0] in external:
                    continue
                port = int(match["port"]) if match["port"] else None
                found.add((match["labels"], port))
                problem = _resolve(rendered, match["labels"], port)
                if problem:
                    problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {problem}")
    assert problems == []
    redpanda = {
        ("redpanda.default", 9092),
        ("redpanda-hl.default", 9644),
        ("redpanda-0.redpanda-hl.default", 33145),
    }
    assert ("postgresql.default", 5432) in found
    assert redpanda & found == (set() if external else redpanda)


def test_should_point_every_kafka_client_at_the_broker_in_use(
    rendered: list[dict], values_under_test: dict | None
) -> None:
    """Producer, drivers, topic Job and Console bootstrap from the address Redpanda advertises, or
    from externalKafka.bootstrapServers when it is set."""
    external = external_bootstrap_servers(values_under_test)
    if external:
        servers = external
    else:
        redpanda = containers(find(rendered, "StatefulSet", "redpanda"))[0]
        advertised = next(
            a.split("://", 1)[1] for a in redpanda["args"] if a.startswith("--advertise-kafka-addr=")
        )
        assert advertised == "redpanda.default.svc.cluster.local:9092"
        servers = [advertised]
    producer = env_of(containers(find(rendered, "Deployment", "producer"))[0])
    topic_job = env_of(containers(find(rendered, "Job", "kafka-topic"))[0])
    drivers = [env_of(app["spec"]["driver"]) for app in of_kind(rendered, "SparkApplication")]
    console = yaml.safe_load(find(rendered, "ConfigMap", "console")["data"]["config.yaml"])
    bootstrap = ",".join(servers)
    assert producer["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    assert topic_job["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    assert [d["KAFKA_BOOTSTRAP_SERVERS"] for d in drivers] == [bootstrap, bootstrap]
    assert console["kafka"]["brokers"] == servers


def test_should_point_every_database_client_at_the_pipeline_database(
    rendered: list[dict],
) -> None:
    """DATABASE_URL and PG* env name the PostgreSQL Service and its database; the migrate Job
    connects as the owner the server's first start creates (not its superuser), the dashboard
    as the reader role and every other client as the writer role, both of which the migrate
    Job creates."""
    server = env_of(containers(find(rendered, "StatefulSet", "postgresql"))[0])
    migrate = env_of(containers(find(rendered, "Job", "postgresql-migrate"))[0])
    owner, writer = server["PIPELINE_OWNER"], migrate["DATABASE_WRITER_ROLE"]
    assert server["POSTGRES_USER"] == "postgres" != owner
    reader = migrate["DATABASE_READER_ROLE"]
    assert len({owner, writer, reader}) == 3
    role_of = {"Job/postgresql-migrate": owner, "Deployment/dashboard": reader}
    expected = f"postgresql.{NAMESPACE}.svc.cluster.local"
    urls = {
        owner_name: env_of(holder)["DATABASE_URL"]
        for owner_name, holder in _env_holders(rendered)
        if "DATABASE_URL" in env_of(holder)
    }
    assert set(urls) == {
        "Job/postgresql-migrate",
        "SparkApplication/enrichment",
        "SparkApplication/aggregation",
        "Deployment/dashboard",
    }
    for owner_name, url in urls.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("postgresql", expected, 5432)
        assert parts.username == role_of.get(owner_name, writer), owner_name
        assert parts.password is None
        assert parts.path == f"/{server['POSTGRES_DB']}"
    psql_clients = [env_of(containers(find(rendered, "Pod", "test-tickets-reach-postgresql"))[0])]
    for app in of_kind(rendered, "SparkApplication"):
        psql_clients += [env_of(wait) for wait in app["spec"]["driver"]["initContainers"]]
    assert len(psql_clients) == 3  # helm test and both drivers' wait-for-schema
    for client in psql_clients:
        assert (client["PGHOST"], client["PGPORT"]) == (expected, "5432")
        assert (client["PGUSER"], client["PGDATABASE"]) == (writer, server["POSTGRES_DB"])


def test_should_resolve_every_secret_reference_to_the_password_secret(
    default_objects: list[dict],
) -> None:
    """Each secretKeyRef names the rendered Secret and a key it holds."""
    secrets = {s["metadata"]["name"]: s["data"] for s in of_kind(default_objects, "Secret")}
    refs = [
        (owner, value["secretKeyRef"])
        for owner, holder in _env_holders(default_objects)
        for value in env_of(holder).values()
        if isinstance(value, dict)
    ]
    assert len(refs) >= 5
    for owner, ref in refs:
        assert ref["key"] in secrets.get(ref["name"], {}), owner


def test_should_select_the_pods_of_exactly_one_workload_per_service(
    rendered: list[dict],
) -> None:
    """Every Service selects one Deployment/StatefulSet, and each targetPort is a container port."""
    for service in of_kind(rendered, "Service"):
        workloads = _selected_workloads(rendered, service)
        name = service["metadata"]["name"]
        assert len(workloads) == 1, name
        for port in service["spec"]["ports"]:
            assert _target_port_exists(workloads[0], port["targetPort"]), (name, port)


def test_should_not_select_job_or_test_pods_with_a_service(default_objects: list[dict]) -> None:
    """Hook Jobs and the helm test pod carry their own component label, out of every selector."""
    one_off = [*of_kind(default_objects, "Job"), *of_kind(default_objects, "Pod")]
    for service in of_kind(default_objects, "Service"):
        selector = service["spec"]["selector"].items()
        for obj in one_off:
            labels = (obj["spec"].get("template", obj))["metadata"]["labels"]
            assert not selector <= labels.items(), (service["metadata"]["name"], obj["kind"])


# --- contract, images, names ---------------------------------------------------------------------


def test_should_use_the_contract_topic_everywhere(rendered: list[dict]) -> None:
    """The topic the Job creates and every TICKETS_TOPIC are core.contract.TOPIC."""
    topics = {
        owner: env_of(holder)["TICKETS_TOPIC"]
        for owner, holder in _env_holders(rendered)
        if "TICKETS_TOPIC" in env_of(holder)
    }
    assert topics == {
        owner: TOPIC
        for owner in (
            "Deployment/producer",
            "Job/kafka-topic",
            "SparkApplication/enrichment",
            "SparkApplication/aggregation",
            "Deployment/dashboard",
        )
    }


def test_should_use_the_contract_tables(default_objects: list[dict]) -> None:
    """The tables helm test and `make status` check are core.contract.TABLES, tickets first;
    a driver waits until the writer may insert into every table it writes."""
    test_env = env_of(containers(find(default_objects, "Pod", "test-tickets-reach-postgresql"))[0])
    assert set(test_env["TABLES"].split()) == OUTPUT_TABLES
    inserted = {table for table, privileges in WRITER_PRIVILEGES.items() if "INSERT" in privileges}
    for app in of_kind(default_objects, "SparkApplication"):
        (wait,) = app["spec"]["driver"]["initContainers"]
        assert set(env_of(wait)["TABLES"].split()) == inserted
    assert test_env["TICKETS_TABLE"] == TABLES.tickets
    assert set(cluster_status.TABLES) == OUTPUT_TABLES
    assert cluster_status.TABLES[0] == TABLES.tickets


def _kind_images() -> list[str]:
    return run_make("-s", "kind-images").stdout.split()


def test_should_run_the_images_that_make_kind_up_builds(default_objects: list[dict]) -> None:
    """The chart's own images are exactly the three that kind-up builds and kind-loads."""
    spark_image, producer_image, dashboard_image = _kind_images()
    assert re.fullmatch(r"ticket-pipeline/spark:\d+\.\d+\.\d+", spark_image)
    assert re.fullmatch(r"ticket-pipeline/producer:\d+\.\d+\.\d+", producer_image)
    assert re.fullmatch(r"ticket-pipeline/dashboard:\d+\.\d+\.\d+", dashboard_image)
    used = {c["image"] for obj in default_objects for c in all_containers(obj)}
    used |= {app["spec"]["image"] for app in of_kind(default_objects, "SparkApplication")}
    assert {image for image in used if image.startswith("ticket-pipeline/")} == {
        spark_image,
        producer_image,
        dashboard_image,
    }
    assert containers(find(default_objects, "Deployment", "producer"))[0]["image"] == producer_image
    assert containers(find(default_objects, "Job", "postgresql-migrate"))[0]["image"] == producer_image
    assert containers(find(default_objects, "Job", "kafka-topic"))[0]["image"] == producer_image
    assert containers(find(default_objects, "Deployment", "dashboard"))[0]["image"] == dashboard_image
    for app in of_kind(default_objects, "SparkApplication"):
        assert app["spec"]["image"] == spark_image


def test_should_build_and_load_each_image_from_its_dockerfile() -> None:
    """kind_up.sh builds images/<name>/Dockerfile under the name it then kind-loads."""
    script = (REPO_ROOT / "scripts" / "ops" / "kind_up.sh").read_text(encoding="utf-8")
    kind_mk = (REPO_ROOT / "k8s" / "kind.mk").read_text(encoding="utf-8")
    for name in ("spark", "producer", "dashboard"):
        variable = f"KIND_{name.upper()}_IMAGE"
        assert f'docker build -f images/{name}/Dockerfile -t "${variable}" .' in script
        assert f'{variable}="$({variable})"' in kind_mk
    loaded = '"$KIND_SPARK_IMAGE" "$KIND_PRODUCER_IMAGE" "$KIND_DASHBOARD_IMAGE"'
    assert f"kind load docker-image {loaded}" in script


def test_should_pull_our_images_only_if_not_present(rendered: list[dict]) -> None:
    """Every image is pinned (no latest, a tag on each) and pulled IfNotPresent, as kind needs."""
    for obj in rendered:
        for container in all_containers(obj):
            assert container["imagePullPolicy"] == "IfNotPresent", obj["metadata"]["name"]
            assert re.search(r":[\w.-]+$", container["image"])
            assert not container["image"].endswith(":latest")
    for app in of_kind(rendered, "SparkApplication"):
        assert app["spec"]["imagePullPolicy"] == "IfNotPresent"


def test_should_name_resources_as_the_readme_commands_use_them(
    default_objects: list[dict],
) -> None:
    """`kubectl scale deploy producer`, `port-forward svc/console 8080` etc. name real objects."""
    find(default_objects, "Deployment", "producer")
    console = find(default_objects, "Service", "console")
    assert [p["port"] for p in console["spec"]["ports"]] == [8080]
    find(default_objects, "StatefulSet", "postgresql")
    find(default_objects, "StatefulSet", "redpanda")
    dashboard = find(default_objects, "Service", "dashboard")
    assert [p["port"] for p in dashboard["spec"]["ports"]] == [8050]
    # The operator names the UI Services <app>-ui-svc with the port of spark.ui.port.
    for name, port in UI_PORTS.items():
        app = find(default_objects, "SparkApplication", name)
        assert app["spec"]["sparkConf"]["spark.ui.port"] == str(port)
        assert env_of(app["spec"]["driver"])["SPARK_UI_PORT"] == str(port)
    forward = (REPO_ROOT / "scripts" / "ops" / "port_forward.sh").read_text(encoding="utf-8")
    for service, ports in (
        ("console", "8080:8080"),
        ("enrichment-ui-svc", "4040:4040"),
        ("aggregation-ui-svc", "4041:4041"),
        ("dashboard", "8050:8050"),
    ):
        assert f"forward {service} {ports} " in forward


def _declared_env(settings_class: type) -> set[str]:
    return {f.metadata["env"] for f in setting_fields(settings_class)}


def _plain_env(holder: Mapping[str, Any]) -> dict[str, str]:
    """The env as the program sees it in its pod: a secret reference stands for a value, and
    the CA mounted from its Secret for a readable file here."""
    env = {k: v if isinstance(v, str) else "from-the-secret" for k, v in env_of(holder).items()}
    if "KAFKA_SSL_CA_FILE" in env:
        env["KAFKA_SSL_CA_FILE"] = __file__
    return env


def _assert_passwords_are_secret_references(env: Mapping[str, Any], settings_class: type) -> None:
    """The password env vars in ``env`` are secretKeyRefs, and no setting of the program."""
    for name in PASSWORD_ENV & set(env):
        assert isinstance(env[name], dict) and set(env[name]) == {"secretKeyRef"}, name
    assert not PASSWORD_ENV & _declared_env(settings_class)


def test_should_bind_the_listeners_of_our_pods_to_every_interface_of_the_pod(rendered: list[dict]) -> None:
    """BIND_HOST (loopback outside the chart) is 0.0.0.0 in the producer, the dashboard and
    both drivers: the probes, Prometheus and the Services reach them on the pod's IP."""
    envs = [
        env_of(containers(find(rendered, "Deployment", "producer"))[0]),
        env_of(containers(find(rendered, "Deployment", "dashboard"))[0]),
        *(env_of(app["spec"]["driver"]) for app in of_kind(rendered, "SparkApplication")),
    ]
    assert [env["BIND_HOST"] for env in envs] == ["0.0.0.0"] * 4


def test_should_give_the_dashboard_its_user_and_the_password_of_its_own_secret(
    default_objects: list[dict], custom_objects: list[dict]
) -> None:
    """DASHBOARD_USER is dashboard.auth.username, DASHBOARD_PASSWORD a reference to the Secret
    `dashboard` the chart generates, or to dashboard.auth.existingSecret and its key."""
    for objects, user, ref in (
        (default_objects, "admin", {"name": "dashboard", "key": "dashboard-password"}),
        (custom_objects, "ops", {"name": "pipeline-db", "key": "dashboard-login"}),
    ):
        env = env_of(containers(find(objects, "Deployment", "dashboard"))[0])
        assert env["DASHBOARD_USER"] == user
        assert env[DASHBOARD_PASSWORD_ENV] == {"secretKeyRef": ref}
    assert "dashboard-password" in find(default_objects, "Secret", "dashboard")["data"]
    assert ("Secret", "dashboard") not in {(o["kind"], o["metadata"]["name"]) for o in custom_objects}


def test_should_set_only_env_vars_the_applications_declare(rendered: list[dict]) -> None:
    """Every env var the chart sets is a setting of the program it runs, or a password
    (PASSWORD_ENV) given as a secret reference; the producer, the topic Job and the drivers get
    all of their Kubernetes interface."""
    producer = env_of(containers(find(rendered, "Deployment", "producer"))[0])
    assert set(producer) - KAFKA_SECURITY_ENV == PRODUCER_ENV
    assert set(producer) - PASSWORD_ENV <= _declared_env(ProducerSettings)
    topic_job = env_of(containers(find(rendered, "Job", "kafka-topic"))[0])
    assert set(topic_job) - KAFKA_SECURITY_ENV == TOPIC_JOB_ENV
    assert set(topic_job) - PASSWORD_ENV <= _declared_env(TopicSettings)
    migrate = env_of(containers(find(rendered, "Job", "postgresql-migrate"))[0])
    assert set(migrate) - LIBPQ_ENV <= _declared_env(MigrateSettings)
    assert set(migrate) >= DATABASE_PASSWORD_ENV | LIBPQ_TLS_ENV
    _assert_passwords_are_secret_references(migrate, MigrateSettings)
    dashboard = env_of(containers(find(rendered, "Deployment", "dashboard"))[0])
    assert set(dashboard) - KAFKA_SECURITY_ENV - LIBPQ_TLS_ENV == DASHBOARD_ENV
    assert set(dashboard) - LIBPQ_ENV <= _declared_env(DashboardSettings)
    _assert_passwords_are_secret_references(dashboard, DashboardSettings)
    for app in of_kind(rendered, "SparkApplication"):
        driver = env_of(app["spec"]["driver"])
        settings_class = JOB_SETTINGS[app["metadata"]["name"]]
        assert set(driver) - KAFKA_SECURITY_ENV - LIBPQ_TLS_ENV == DRIVER_ENV
        assert set(driver) - LIBPQ_ENV <= _declared_env(settings_class)
        _assert_passwords_are_secret_references(driver, settings_class)
        # The executors stage rows in PostgreSQL and may read a refused record back from Kafka:
        # they get the writer's password and libpq's TLS settings, and Kafka's password with
        # SASL, nothing else.
        executor = set(env_of(app["spec"]["executor"]))
        assert executor - {"KAFKA_SASL_PASSWORD"} == {"PGPASSWORD"} | LIBPQ_TLS_ENV
        _assert_passwords_are_secret_references(env_of(app["spec"]["executor"]), settings_class)


def test_should_give_the_applications_values_their_settings_accept(rendered: list[dict]) -> None:
    """The chart's env values load through the programs' own settings (types and checks)."""
    values = yaml.safe_load((REPO_ROOT / "charts" / "values.yaml").read_text(encoding="utf-8"))
    producer = load(
        ProducerSettings,
        [],
        environ=_plain_env(containers(find(rendered, "Deployment", "producer"))[0]),
    )
    assert producer.topic == TOPIC and producer.count == 0
    topic_job = load(
        TopicSettings, [], environ=_plain_env(containers(find(rendered, "Job", "kafka-topic"))[0])
    )
    assert (topic_job.topic, topic_job.partitions) == (producer.topic, producer.partitions)
    assert topic_job.bootstrap_servers == producer.bootstrap_servers
    load(
        MigrateSettings,
        [],
        environ=_plain_env(containers(find(rendered, "Job", "postgresql-migrate"))[0]),
    )
    for name, settings_class in JOB_SETTINGS.items():
        app = find(rendered, "SparkApplication", name)
        settings = load(settings_class, [], environ=_plain_env(app["spec"]["driver"]))
        assert settings.ui_port == UI_PORTS[name] == int(app["spec"]["sparkConf"]["spark.ui.port"])
        assert settings.checkpoint_dir == f"/checkpoints/{name}"
        assert settings.trigger_interval_seconds == values["spark"]["triggerIntervalSeconds"]
    # The dashboard listens on 0.0.0.0: it starts only with the user and password the chart gives.
    dashboard_env = _plain_env(containers(find(rendered, "Deployment", "dashboard"))[0])
    dashboard = load_settings([], environ={**dashboard_env, DASHBOARD_PASSWORD_ENV: "from-the-secret"})
    assert dashboard.authenticates and dashboard.bind_host == "0.0.0.0"
    assert (dashboard.bootstrap_servers, dashboard.topic) == (producer.bootstrap_servers, producer.topic)
    assert dashboard.port == values["dashboard"]["port"]
    assert dashboard.spark_ui_urls.split(",") == [f"http://localhost:{UI_PORTS[name]}" for name in UI_PORTS]


# --- Spark ----------------------------------------------------------------------------------------


def test_should_run_each_spark_job_as_a_never_ending_stream(rendered: list[dict]) -> None:
    """Python apps in cluster mode, restarted Always with backoff; the drivers as the chart's
    spark-driver (or spark.serviceAccount), the executors as spark-executor."""
    for app in of_kind(rendered, "SparkApplication"):
        spec = app["spec"]
        assert (spec["type"], spec["mode"]) == ("Python", "cluster")
        assert spec["restartPolicy"]["type"] == "Always"
        assert spec["restartPolicy"]["onFailureRetryInterval"] >= 1
        assert spec["restartPolicy"]["onSubmissionFailureRetryInterval"] >= 1
        assert spec["driver"]["serviceAccount"] == "spark-driver"
        assert spec["executor"]["serviceAccount"] == "spark-executor"
        for pod in (spec["driver"], spec["executor"]):
            assert pod["cores"] >= 1 and pod["coreLimit"] and pod["coreRequest"]
            assert re.fullmatch(r"\d+[kmgt]", pod["memory"])


def test_should_keep_each_jobs_checkpoints_on_its_own_volume(rendered: list[dict]) -> None:
    """CHECKPOINT_DIR lies on a rendered PVC mounted in the driver, one claim per job."""
    claims = set()
    pvcs = {p["metadata"]["name"] for p in of_kind(rendered, "PersistentVolumeClaim")}
    for app in of_kind(rendered, "SparkApplication"):
        volumes = {v["name"]: v for v in app["spec"]["volumes"]}
        checkpoint_dir = Path(env_of(app["spec"]["driver"])["CHECKPOINT_DIR"])
        mounts = [
            m for m in app["spec"]["driver"]["volumeMounts"]
            if checkpoint_dir.is_relative_to(m["mountPath"])
            and "persistentVolumeClaim" in volumes[m["name"]]
        ]  # fmt: skip
        assert len(mounts) == 1, app["metadata"]["name"]
        claim = volumes[mounts[0]["name"]]["persistentVolumeClaim"]["claimName"]
        assert claim in pvcs
        claims.add(claim)
    assert len(claims) == 2


def test_should_point_each_main_file_at_a_job_the_spark_image_contains(
    default_objects: list[dict],
) -> None:
    """mainApplicationFile is jobs/<app>.py inside the image (local:///opt/spark/work-dir)."""
    dockerfile = (REPO_ROOT / "images" / "spark" / "Dockerfile").read_text(encoding="utf-8")
    assert f"COPY jobs/ {IMAGE_WORKDIR}/jobs/" in dockerfile
    assert f"COPY core/ {IMAGE_WORKDIR}/core/" in dockerfile
    assert f"PYTHONPATH={IMAGE_WORKDIR}" in dockerfile
    for name in UI_PORTS:
        run = spark_run_spec(find(default_objects, "SparkApplication", name))
        assert run.main_application_file == f"local://{IMAGE_WORKDIR}/jobs/{name}.py"
        assert run.module == f"jobs.{name}"
        assert run.local_main_file == REPO_ROOT / "jobs" / f"{name}.py"


def test_should_find_the_main_files_in_the_repository() -> None:
    """jobs/enrichment.py and jobs/aggregation.py exist (skipped only while jobs/ is empty)."""
    if not any((REPO_ROOT / "jobs").glob("*.py")):
        pytest.skip("jobs/ holds no module yet")
    for name in UI_PORTS:
        assert (REPO_ROOT / "jobs" / f"{name}.py").is_file(), name


def test_should_map_chart_hosts_to_local_addresses_for_a_native_run() -> None:
    """render.replace_hosts turns the chart's addresses into local ones for a chart-driven run."""
    from .render import replace_hosts

    app = find(render_chart(), "SparkApplication", "enrichment")
    env = env_of(app["spec"]["driver"])
    local = {"redpanda": "127.0.0.1:19092", "postgresql": "127.0.0.1:55432"}
    assert replace_hosts(env["KAFKA_BOOTSTRAP_SERVERS"], local) == "127.0.0.1:19092"
    assert replace_hosts(env["DATABASE_URL"], local) == "postgresql://tickets_writer@127.0.0.1:55432/tickets"


# --- conventions ---------------------------------------------------------------------------------


def test_should_give_every_container_requests_and_limits(rendered: list[dict]) -> None:
    """CPU and memory requests and limits are set on every container, init ones included."""
    for obj in rendered:
        for container in all_containers(obj):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (
                    obj["metadata"]["name"],
                    container["name"],
                    bound,
                )


def test_should_run_every_pod_as_non_root_with_a_read_only_root(rendered: list[dict]) -> None:
    """Pods run as a non-root UID; containers drop all capabilities and keep a read-only root."""
    for obj in rendered:
        spec = pod_spec(obj)
        pods = (
            [(spec["securityContext"], c["securityContext"]) for c in containers(obj, init=True)]
            if spec
            else []
        )
        for pod in spark_pods(obj):
            pods += [(pod["podSecurityContext"], pod["securityContext"])]
            pods += [(pod["podSecurityContext"], c["securityContext"]) for c in pod.get("initContainers", [])]
        for pod_context, container_context in pods:
            name = obj["metadata"]["name"]
            assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] > 0, name
            assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert container_context["allowPrivilegeEscalation"] is False, name
            assert container_context["capabilities"] == {"drop": ["ALL"]}, name
            assert container_context["readOnlyRootFilesystem"] is True, name


def test_should_run_each_image_as_the_user_its_dockerfile_sets(default_objects: list[dict]) -> None:
    """The chart runs our images as their Dockerfiles' USER (185 Spark; 10001 the producer image,
    also run by the migrate and topic Jobs, and the dashboard image)."""
    for image, uid in (("spark", 185), ("producer", 10001), ("dashboard", 10001)):
        dockerfile = (REPO_ROOT / "images" / image / "Dockerfile").read_text(encoding="utf-8")
        assert re.findall(r"^USER (\d+)", dockerfile, re.M)[-1] == str(uid)
    workloads = (("Deployment", "producer"), ("Deployment", "dashboard"))
    for kind, name in (*workloads, ("Job", "postgresql-migrate"), ("Job", "kafka-topic")):
        assert pod_spec(find(default_objects, kind, name))["securityContext"]["runAsUser"] == 10001, name
    for app in of_kind(default_objects, "SparkApplication"):
        assert app["spec"]["driver"]["podSecurityContext"]["runAsUser"] == 185


def test_should_name_the_database_user_wherever_a_libpq_tool_runs(rendered: list[dict]) -> None:
    """Every container that runs psql or pg_isready names the user (PGUSER or -U). libpq's default
    is the OS user's name, and the pods' UIDs (10001, 185) have no passwd entry in the postgres
    image: pg_isready then answers "no attempt" forever (found on a real cluster)."""
    for obj in rendered:
        for container in all_containers(obj):
            script = " ".join(container.get("command", []) + container.get("args", []))
            probes = [
                " ".join(probe.get("exec", {}).get("command", []))
                for probe in (container.get("readinessProbe", {}), container.get("livenessProbe", {}))
            ]
            for text in (script, *probes):
                if re.search(r"\b(psql|pg_isready)\b", text):
                    where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
                    assert "PGUSER" in env_of(container) or re.search(r"\s-U\s", text), where


def test_should_bound_each_psql_connection_attempt(rendered: list[dict]) -> None:
    """Every container whose script retries psql sets PGCONNECT_TIMEOUT. Without it libpq waits
    for the kernel's TCP timeout (about 2 minutes) when a SYN gets no answer, as for a Service
    that kube-proxy has not programmed yet: a driver's wait-for-schema then hung for minutes after
    the tables existed (found on a real cluster). pg_isready has its own -t (3 s by default)."""
    checked = []
    for obj in rendered:
        for container in all_containers(obj):
            script = " ".join(container.get("command", []) + container.get("args", []))
            if re.search(r"\bpsql\b", script):
                where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
                assert 0 < int(env_of(container).get("PGCONNECT_TIMEOUT", "0")) <= 10, where
                checked.append(where)
    assert len(checked) >= 3, checked  # both drivers' wait-for-schema and the helm test


def test_should_label_every_object_with_the_standard_labels(rendered: list[dict]) -> None:
    """helm.sh/chart and app.kubernetes.io/{name,instance,version,managed-by,component} on all."""
    required = {
        "helm.sh/chart",
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/component",
    }
    for obj in rendered:
        assert required <= set(obj["metadata"]["labels"]), obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "ticket-pipeline"


def test_should_keep_every_name_within_63_characters(rendered: list[dict]) -> None:
    """Object names are DNS labels (StatefulSet pods and Services need <= 63 characters)."""
    for obj in rendered:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", obj["metadata"]["name"])


def test_should_serve_metrics_on_the_declared_port_that_the_pod_monitors_scrape(
    custom_objects: list[dict],
) -> None:
    """The producer and each driver get METRICS_PORT equal to their container port `metrics`,
    and each PodMonitor selects exactly the pods of its component and scrapes that port."""
    pods = {"producer": find(custom_objects, "Deployment", "producer")["spec"]["template"]}
    producer = containers(find(custom_objects, "Deployment", "producer"))[0]
    ports = {"producer": (env_of(producer)["METRICS_PORT"], producer["ports"])}
    for app in ("enrichment", "aggregation"):
        driver = find(custom_objects, "SparkApplication", app)["spec"]["driver"]
        ports[app] = (env_of(driver)["METRICS_PORT"], driver["ports"])
        pods[app] = {"metadata": {"labels": driver["labels"]}}
    for component, (env_port, declared) in ports.items():
        assert [(p["name"], p["containerPort"]) for p in declared] == [("metrics", int(env_port))], component
    for monitor in of_kind(custom_objects, "PodMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        selected = [c for c, pod in pods.items() if wanted.items() <= pod["metadata"]["labels"].items()]
        assert selected == [monitor["metadata"]["name"]]
        first = monitor["spec"]["podMetricsEndpoints"][0]
        assert first == {"port": "metrics", "path": "/metrics", "interval": "30s"}


def test_should_serve_the_dashboard_on_its_port_and_probe_its_health_path(rendered: list[dict]) -> None:
    """The dashboard listens on DASHBOARD_PORT, its container port `http`, which the Service
    targets; both probes ask dashboard.app's HEALTH_PATH (no query behind it) on that port."""
    container = containers(find(rendered, "Deployment", "dashboard"))[0]
    port = int(env_of(container)["DASHBOARD_PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    service = find(rendered, "Service", "dashboard")
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, "http")]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}, probe


def test_should_scrape_through_service_monitors_what_the_pod_monitors_would(
    service_monitor_objects: list[dict], custom_objects: list[dict]
) -> None:
    """With monitoring.serviceMonitor: per component a headless Service `<component>-metrics`
    over exactly its pods (a Spark job's driver, not its executors) and a ServiceMonitor that
    selects only that Service, scraping the same port names and paths as the PodMonitor."""
    assert of_kind(service_monitor_objects, "PodMonitor") == []
    pod_monitors = {m["metadata"]["name"]: m for m in of_kind(custom_objects, "PodMonitor")}
    monitors = {m["metadata"]["name"]: m for m in of_kind(service_monitor_objects, "ServiceMonitor")}
    assert set(monitors) == set(pod_monitors) == {"producer", "enrichment", "aggregation"}
    services = of_kind(service_monitor_objects, "Service")
    for name, monitor in monitors.items():
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = [s for s in services if wanted <= s["metadata"]["labels"].items()]
        assert service["metadata"]["name"] == f"{name}-metrics"
        assert service["spec"]["clusterIP"] == "None"
        (workload,) = _selected_workloads(service_monitor_objects, service)
        assert workload["metadata"]["name"] in (name, f"{name}-driver")
        for port in service["spec"]["ports"]:
            assert port["name"] == port["targetPort"] and _target_port_exists(workload, port["targetPort"])
        scraped = [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]]
        assert scraped == [(e["port"], e["path"]) for e in pod_monitors[name]["spec"]["podMetricsEndpoints"]]
        assert {port for port, _ in scraped} == {p["name"] for p in service["spec"]["ports"]}
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_should_refuse_pod_monitors_and_service_monitors_at_once() -> None:
    """Both would make Prometheus scrape every target twice: the install fails, naming both."""
    both = {"monitoring": {"podMonitor": {"enable": True}, "serviceMonitor": {"enable": True}}}
    refused = r"monitoring\.serviceMonitor\.enable and monitoring\.podMonitor\.enable"
    with pytest.raises(HelmError, match=refused):
        render_chart(both)


def test_should_give_every_kafka_client_the_external_brokers_tls_and_sasl_from_secrets(
    values_under_test: dict | None, rendered: list[dict]
) -> None:
    """With externalKafka.tls and .sasl, the producer, the topic Job, the dashboard, both drivers
    and Console get SASL_SSL, the user, the password as a reference to its Secret, and the CA
    mounted read-only from its Secret at KAFKA_SSL_CA_FILE; the executors get the password and
    the CA. Otherwise every client gets PLAINTEXT and nothing more."""
    secure = values_under_test is SECURE_KAFKA_VALUES
    pods = [
        containers(find(rendered, "Deployment", "producer"))[0],
        containers(find(rendered, "Job", "kafka-topic"))[0],
        containers(find(rendered, "Deployment", "dashboard"))[0],
        *(app["spec"]["driver"] for app in of_kind(rendered, "SparkApplication")),
    ]
    password = {"secretKeyRef": {"name": "kafka-credentials", "key": "kafka-password"}}
    for pod in pods:
        env = env_of(pod)
        if not secure:
            assert env["KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT" and not KAFKA_SECURITY_ENV & set(env)
            continue
        assert {name: env[name] for name in ("KAFKA_SECURITY_PROTOCOL", *sorted(KAFKA_SECURITY_ENV))} == {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "ticket-pipeline",
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CA_FILE": "/etc/kafka-ca/ca.pem",
        }
        assert {"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True} in pod["volumeMounts"]
    for app in of_kind(rendered, "SparkApplication"):
        executor = app["spec"]["executor"]
        assert (env_of(executor).get("KAFKA_SASL_PASSWORD") == password) is secure
        assert any(m["name"] == "kafka-ca" for m in executor["volumeMounts"]) is secure
        volumes = {v["name"]: v for v in app["spec"]["volumes"]}
        assert ("kafka-ca" in volumes) is secure
    if secure:
        assert volumes["kafka-ca"]["secret"] == {
            "secretName": "kafka-ca",
            "items": [{"key": "ca.pem", "path": "ca.pem"}],
        }
        console = find(rendered, "Deployment", "console")
        assert env_of(containers(console)[0])["KAFKA_SASL_PASSWORD"] == password
        config = yaml.safe_load(find(rendered, "ConfigMap", "console")["data"]["config.yaml"])
        assert config["kafka"]["tls"] == {"enabled": True, "caFilepath": "/etc/kafka-ca/ca.pem"}
        assert config["kafka"]["sasl"] == {
            "enabled": True,
            "mechanism": "SCRAM-SHA-512",
            "username": "ticket-pipeline",
        }


def test_should_give_the_drivers_only_what_spark_needs_and_the_executors_no_token(
    rendered: list[dict],
) -> None:
    """The drivers' Role: pods and configmaps, to create, see and delete their executors; no
    Secret, no PVC, no update or patch. The executors' ServiceAccount mounts no token."""
    role = find(rendered, "Role", "spark-driver")
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods", "configmaps"],
            "verbs": ["get", "list", "watch", "create", "delete", "deletecollection"],
        }
    ]
    binding = find(rendered, "RoleBinding", "spark-driver")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "spark-driver",
    }
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("ServiceAccount", "spark-driver")]
    assert "automountServiceAccountToken" not in find(rendered, "ServiceAccount", "spark-driver")
    assert find(rendered, "ServiceAccount", "spark-executor")["automountServiceAccountToken"] is False
    # No other Role of ours grants anything on Secrets.
    for other in of_kind(rendered, "Role"):
        assert all("secrets" not in rule["resources"] for rule in other["rules"]), other["metadata"]["name"]
