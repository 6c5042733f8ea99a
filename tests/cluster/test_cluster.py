"""The chart on a real Kubernetes cluster (../shared/localcluster): `make cluster-test`.

The session fixture brings the cluster up (or reuses a running one), builds every image and
loads it under the name the manifests use, builds and installs the Spark operator from its
pinned Go module with its own chart, starts Apache Kafka in a pod of its own (the chart's
external-broker option: Redpanda cannot be had here), then installs the chart as docs/kubernetes.md tells
a user: `helm install ticket-pipeline charts/` plus tests/cluster/values.yaml. The tests then
check the live cluster, in order. Each phase's wall time is printed at the end.

Skipped, with the reason, where ../shared/localcluster is absent or cannot run (not root), and
outside `make cluster-test` (opt-in: it takes many minutes).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import shlex
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyspark import __version__ as SPARK_VERSION

from core.contract import TOPIC, TYPE_TEAMS
from core.scrape import scrape, value
from core.settings import REPO_ROOT
from dashboard.app import HEALTH_PATH
from scripts.ops.cluster_status import SPARK_APPLICATIONS, Cluster, wait_until_running
from tests.dashboard.page import BROWSER_MISSING, basic_auth, check_page, headless_chromium
from tests.docs_text import tear_down_commands
from tests.k8s.network_policy import selector_matches
from tests.k8s.validation import make_variable

from .localcluster import LocalCluster, default_lc, wait_for, why_localcluster_cannot_run

OPT_IN_ENV = "TICKET_PIPELINE_CLUSTER_TEST"
LC = default_lc()
HERE = Path(__file__).parent
RELEASE, NAMESPACE = "ticket-pipeline", "default"
KAFKA_MANIFEST = HERE / "manifests" / "kafka.yaml"
CLUSTER_VALUES = HERE / "values.yaml"
OPERATOR_VALUES = HERE / "spark-operator-values.yaml"
# Free disk needed before the install: lc's kubelet evicts pods below 5% free (evictionHard
# nodefs.available), and the run's logs, volumes and topic need a few GB above that.
KUBELET_EVICTION_FREE_SHARE = 0.05
RUN_DISK_BYTES = 8 * 10**9


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def topic_ids(cluster: LocalCluster) -> tuple[int, str]:
    """(distinct ticket ids, md5 of them sorted) of the whole topic, read by a pod in the cluster."""
    audit = run_topic_audit(cluster)
    print(f"\ntopic {TOPIC}: {audit['records']} records, {audit['ids']} distinct ticket ids")
    return audit["ids"], audit["md5"]


def run_topic_audit(cluster: LocalCluster) -> dict:
    """tests/cluster/topic_audit.py's answer, from a pod of the producer image."""
    values = yaml.safe_load(CLUSTER_VALUES.read_text())
    chart = yaml.safe_load((REPO_ROOT / "charts" / "Chart.yaml").read_text())
    log = cluster.run_pod(
        f"ticket-pipeline/producer:{chart['appVersion']}",
        ["python", "-c", (HERE / "topic_audit.py").read_text(),
         values["externalKafka"]["bootstrapServers"], TOPIC],
    )  # fmt: skip
    return json.loads(log.strip().splitlines()[-1])


def stored_ids(pipeline: Cluster) -> tuple[int, str]:
    """(ticket ids, md5 of them sorted) in `tickets`, comparable with topic_ids()."""
    query = (
        "SELECT count(*), md5(coalesce(string_agg(ticket_id::text, ','"
        " ORDER BY convert_to(ticket_id::text, 'UTF8')), '')) FROM tickets"
    )
    count, digest = pipeline.psql(query).strip().split("|")
    return int(count), digest


def ticket_count(pipeline: Cluster) -> int:
    return int(pipeline.psql("SELECT count(*) FROM tickets").strip())


def stop_every_producer(cluster: LocalCluster, pipeline: Cluster) -> None:
    """Scale the producer to 0 and wait until no producer pod is left, terminating ones and a
    replacement started just before included: only then is the topic final. (The Deployment's
    ready count drops to 0 at once, while such pods may still produce: a run audited the topic
    then, and it grew by some hundred tickets afterwards.)"""
    pipeline.scale_producer(0)
    wait_for(
        "no producer pod left",
        lambda: (
            pipeline.producer_replicas() == (0, 0)
            and not cluster.pods("app.kubernetes.io/component=producer")
        ),
        timeout_seconds=180,
    )


def grow_then_drain_to_the_topics_ids(
    cluster: LocalCluster, pipeline: Cluster, phases: Phases, after: str, before: int | None = None
) -> int:
    """With one producer, wait for 200 more tickets than `before` (default: now), stop the
    producer, then wait until `tickets` holds exactly the topic's ticket ids; return how many."""
    start = ticket_count(pipeline) if before is None else before
    pipeline.scale_producer(1)
    wait_for(f"tickets growing after {after}", lambda: ticket_count(pipeline) > start + 200, 300)
    stop_every_producer(cluster, pipeline)
    expected = topic_ids(cluster)
    with phases.timed(f"after {after}, until tickets hold exactly the topic's ids"):
        wait_for("tickets = the ids in the topic", lambda: stored_ids(pipeline) == expected, 300, 5)
    return expected[0]


def produced_rate(pipeline: Cluster, seconds: float) -> float:
    """Tickets per second created during the next `seconds`, counted in `tickets` once the jobs
    have stored all of them. Counting by created_at, not by rows added meanwhile, keeps a backlog
    the jobs are still catching up on out of the figure."""
    start = float(pipeline.psql("SELECT extract(epoch FROM now())"))
    time.sleep(seconds)
    end = start + seconds
    newest = "SELECT coalesce(extract(epoch FROM max(created_at)), 0) FROM tickets"
    # A micro-batch reads every partition up to its latest offsets: once a ticket created 15 s
    # after the window is stored, every ticket of the window (delivered within 15 s) is too.
    wait_for("every ticket of the window stored", lambda: float(pipeline.psql(newest)) > end + 15, 300)
    window = f"created_at >= to_timestamp({start}) AND created_at < to_timestamp({end})"
    return int(pipeline.psql(f"SELECT count(*) FROM tickets WHERE {window}")) / seconds


def topic_partitions(cluster: LocalCluster) -> int:
    """Partitions of the tickets topic, as a pod in the cluster sees it."""
    audit = run_topic_audit(cluster)
    return audit["partitions"]


def _skip_reason() -> str | None:
    if os.environ.get(OPT_IN_ENV) != "1":
        return "opt-in: the cluster test takes many minutes; run `make cluster-test`"
    return why_localcluster_cannot_run(LC)


_SKIP = _skip_reason()
pytestmark = [pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP)), pytest.mark.timeout(3600)]


class Phases:
    """Wall time of each phase, printed as a table at the end of the session."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def timed(self, name: str):
        phases = self

        class _Timer:
            def __enter__(self) -> None:
                self.started = time.monotonic()
                print(f"\n==> {name}", flush=True)

            def __exit__(self, *exc: object) -> None:
                phases.seconds[name] = time.monotonic() - self.started
                print(f"==> {name}: {phases.seconds[name]:.0f} s", flush=True)

        return _Timer()

    def table(self) -> str:
        width = max(map(len, self.seconds), default=0)
        return "\n".join(f"  {name:<{width}} {seconds:7.0f} s" for name, seconds in self.seconds.items())


@pytest.fixture(scope="module")
def phases() -> Iterator[Phases]:
    recorded = Phases()
    yield recorded
    print(f"\ncluster test phases (wall time):\n{recorded.table()}", flush=True)


def disk_pressure(local: LocalCluster) -> bool:
    """Whether the node reports DiskPressure (the kubelet then taints it and evicts pods)."""
    conditions = local.get("node", "localcluster")["status"]["conditions"]
    return any(c["type"] == "DiskPressure" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def cluster(phases: Phases) -> Iterator[LocalCluster]:
    """A running localcluster with every image loaded, the operator, Kafka and the chart installed."""
    local = LocalCluster(LC)
    was_running = local.is_running()
    with phases.timed("localcluster install and build"):
        local.run_lc("install")
        local.run_lc("build")
    with phases.timed("images (stand-ins and ours)"):
        local.run_showing_output("bash", str(HERE / "build_images.sh"))
    version = make_variable("SPARK_OPERATOR_VERSION")
    with phases.timed("Spark operator built from its Go module"):
        local.run_showing_output(
            "bash", str(HERE / "build_operator.sh"), version, make_variable("SPARK_OPERATOR_SUM"), str(LC)
        )  # fmt: skip
    with phases.timed("localcluster up"):
        # Up after the image builds: they can take the disk below the kubelet's eviction
        # threshold, and a running kubelet then taints the node and removes the images no pod
        # uses, the pause image among them (one run's pods then never started). `lc up`, which
        # is idempotent, imports its built-in images again where they are missing.
        local.up()
        wait_for("the node free of disk pressure", lambda: not disk_pressure(local), 600, 5)
    with phases.timed("Spark operator installed with its chart"):
        chart = REPO_ROOT / ".local" / f"spark-operator-{version}" / "spark-operator-chart"
        local.run(
            "bash", "scripts/ops/install_spark_operator.sh", str(OPERATOR_VALUES),
            env={"KIND_SPARK_OPERATOR_CHART": str(chart),
                 "KIND_SPARK_OPERATOR_VALUES": str(REPO_ROOT / "k8s" / "spark-operator-values.yaml")},
            timeout=900,
        )  # fmt: skip
        webhook_route = local.route_service_from_host("spark-operator-webhook-svc", "spark-operator")
    with phases.timed("what an earlier run left removed"):
        # Every run starts from nothing: a release left by an interrupted run goes, with what
        # `helm uninstall` keeps (the documented tear-down: volumes, password Secret), and so does the
        # broker with its topic. The timings below are then those of a first install.
        local.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", check=False, timeout=600)
        for command in tear_down_commands()[1:]:
            if not command.startswith("make kind-down"):
                local.run(*shlex.split(command), "--ignore-not-found", "--wait", timeout=300)
        local.kubectl("delete", "-f", str(KAFKA_MANIFEST), "--ignore-not-found", "--wait", timeout=300)
    with phases.timed("Kafka (KRaft) in its own pod"):
        local.kubectl("apply", "-f", str(KAFKA_MANIFEST))
        local.kubectl(
            "rollout", "status", "-n", "kafka", "statefulset/kafka", "--timeout", "300s", timeout=330
        )
    disk = local.disk_usage()
    needed = disk.total * KUBELET_EVICTION_FREE_SHARE + RUN_DISK_BYTES
    if disk.free < needed:
        pytest.fail(
            f"only {disk.free / 1e9:.1f} GB free under lc's state, {needed / 1e9:.0f} GB needed:"
            " the kubelet evicts every pod when less than 5% of the disk is free."
            " Free some space (MIN_FREE_GB=1000 bash tests/cluster/build_images.sh prunes untagged"
            " images), then run make cluster-test again."
        )
    with phases.timed("helm install ticket-pipeline charts/"):
        local.helm(
            "install", RELEASE, "charts/", "--namespace", NAMESPACE,
            "--values", str(CLUSTER_VALUES), "--wait", "--timeout", "10m",
            timeout=700,
        )  # fmt: skip
    yield local
    local.run("ip", "route", "del", *webhook_route.split(), check=False)
    if not was_running:  # leave the machine as the test found it; a cluster it reused stays up
        local.run_lc("down")


def test_should_install_the_operator_and_the_chart(cluster: LocalCluster) -> None:
    """The operator's controller and webhook run, its CRD is served, and the release is deployed."""
    cluster.kubectl("get", "crd", "sparkapplications.sparkoperator.k8s.io")
    for component in ("controller", "webhook"):
        pods = cluster.live_pods(f"app.kubernetes.io/component={component}", namespace="spark-operator")
        assert pods and all(p["status"]["phase"] == "Running" for p in pods), component
    assert '"status":"deployed"' in cluster.helm("status", RELEASE, "-o", "json").replace(" ", "")


def test_should_run_both_spark_applications_under_the_charts_security_contexts(
    cluster: LocalCluster, phases: Phases
) -> None:
    """Both SparkApplications reach RUNNING; their driver and executor pods run non-root, with a
    read-only root filesystem and no capabilities, as the chart asks through the operator."""
    with phases.timed("until both SparkApplications RUNNING"):
        wait_for(
            "both SparkApplications RUNNING",
            lambda: all(
                cluster.get("sparkapplication", app)["status"].get("applicationState", {}).get("state")
                == "RUNNING"
                for app in SPARK_APPLICATIONS
            ),
            timeout_seconds=900,
        )
    for app in SPARK_APPLICATIONS:
        for role in ("driver", "executor"):
            pods = wait_for(
                f"{app} {role} pod Running",
                lambda app=app, role=role: [
                    p for p in cluster.pods(f"spark-app-name={app},spark-role={role}")
                    if p["status"]["phase"] == "Running"
                ],
                timeout_seconds=300,
            )  # fmt: skip
            for pod in pods:
                pod_context = pod["spec"].get("securityContext", {})
                for container in pod["spec"]["containers"]:
                    # A container's own securityContext wins over the pod's for the fields both have.
                    context = {**pod_context, **container.get("securityContext", {})}
                    where = f"{pod['metadata']['name']}/{container['name']}"
                    assert context.get("runAsNonRoot") is True, where
                    assert context.get("runAsUser", 0) != 0, where
                    uid = cluster.kubectl(
                        "exec", pod["metadata"]["name"], "-c", container["name"], "--", "id", "-u"
                    )
                    assert uid.strip() not in ("", "0"), where
                    assert context.get("readOnlyRootFilesystem") is True, where
                    assert context.get("capabilities", {}).get("drop") == ["ALL"], where


def can_i(cluster: LocalCluster, account: str, verb: str, resource: str) -> bool:
    """`kubectl auth can-i` as one of the chart's ServiceAccounts, in the release's namespace."""
    # "pods/exec" would read as the pod named exec: a subresource has its own flag.
    resource, _, subresource = resource.partition("/")
    answer = cluster.kubectl(
        "auth", "can-i", verb, resource, f"--subresource={subresource}", "--namespace", NAMESPACE,
        "--as", f"system:serviceaccount:{NAMESPACE}:{account}", check=False,
    )  # fmt: skip
    return answer.strip() == "yes"


def test_should_let_the_drivers_manage_their_executors_and_nothing_more(cluster: LocalCluster) -> None:
    """The running drivers' ServiceAccount may create, watch and delete pods and ConfigMaps, and
    may not read a Secret (the owner's password), touch a PVC or a Service, or update or patch
    a pod; the executors' may do nothing, and no token is mounted in their pods."""
    for app in SPARK_APPLICATIONS:
        for role, account in (("driver", "spark-driver"), ("executor", "spark-executor")):
            for pod in cluster.live_pods(f"spark-app-name={app},spark-role={role}"):
                assert pod["spec"]["serviceAccountName"] == account, pod["metadata"]["name"]
                if role == "executor":
                    mounts = [
                        m["mountPath"] for c in pod["spec"]["containers"] for m in c.get("volumeMounts", [])
                    ]
                    assert not any("serviceaccount" in path for path in mounts), mounts
    allowed = {
        (verb, resource) for verb in ("create", "delete", "watch") for resource in ("pods", "configmaps")
    }
    refused = {
        ("get", "secrets"), ("list", "secrets"), ("patch", "pods"), ("update", "pods"),
        ("create", "persistentvolumeclaims"), ("delete", "persistentvolumeclaims"),
        ("patch", "services"), ("create", "pods/exec"),
    }  # fmt: skip
    assert {(v, r) for v, r in allowed | refused if can_i(cluster, "spark-driver", v, r)} == allowed
    assert not any(can_i(cluster, "spark-executor", v, r) for v, r in allowed | refused)


# The drivers' ValidatingAdmissionPolicy (charts/templates/spark/admission-policy.yaml) and the
# start of the message of each of its rules that these checks break.
ADMISSION_POLICY = f"{RELEASE}-{NAMESPACE}-spark-driver-pods"
SECRET_RULE = "a pod of the Spark driver reads of Secrets only what the executors need"
VOLUME_RULE = "a pod of the Spark driver mounts only emptyDir, configMap, downwardAPI, projected and secret"
ACCOUNT_RULE = "a pod of the Spark driver runs as the executors' ServiceAccount spark-executor"


def create_dry_run(cluster: LocalCluster, pod: dict, directory: Path, account: str | None = None) -> str:
    """`kubectl create --dry-run=server` of `pod`, as the chart's ServiceAccount `account` (as the
    cluster's admin when None): authorization and every admission step run, the policy's
    included, and nothing is stored. Its output; RuntimeError with kubectl's message when refused."""
    manifest = directory / f"{pod['metadata']['name']}.json"
    manifest.write_text(json.dumps(pod), encoding="utf-8")
    identity = ["--as", f"system:serviceaccount:{NAMESPACE}:{account}"] if account else []
    return cluster.kubectl(
        "create", "--dry-run=server", "-f", str(manifest), "--namespace", NAMESPACE, *identity
    )


def executor_copy(cluster: LocalCluster) -> dict:
    """A new pod with the spec of a running executor, as its driver created it: without the node
    the scheduler chose, the driver's ownership and Spark's labels (the operator's webhook would
    add its env and volumes a second time)."""
    running = wait_for(
        "a running enrichment executor",
        lambda: [
            p for p in cluster.live_pods("spark-app-name=enrichment,spark-role=executor")
            if p["status"]["phase"] == "Running"
        ],
        timeout_seconds=300,
    )  # fmt: skip
    spec = copy.deepcopy(running[0]["spec"])
    for filled_in in ("nodeName", "priority", "preemptionPolicy", "serviceAccount"):
        spec.pop(filled_in, None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"policy-check-{uuid.uuid4().hex[:8]}", "labels": {"app": "policy-check"}},
        "spec": spec,
    }


def test_should_deny_the_drivers_a_pod_that_reads_the_owners_secret(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """As the drivers' ServiceAccount, which RBAC lets create any pod: a copy of a running
    executor is admitted; the same pod with the PostgreSQL Secret (which holds the owner's
    password) as a volume, or with the owner's key as an env var, with the node's disk, or
    running as the driver's account is denied by the chart's ValidatingAdmissionPolicy, with
    the message of the rule it breaks. The cluster's admin may create the pod with the volume:
    the policy checks the drivers only."""
    policy = cluster.get("validatingadmissionpolicy", ADMISSION_POLICY)
    messages = [v["message"] for v in policy["spec"]["validations"]]
    for rule in (SECRET_RULE, VOLUME_RULE, ACCOUNT_RULE):
        assert any(m.startswith(rule) for m in messages), (rule, messages)
    secret = cluster.get("secret", "postgresql")
    owner_key = "password"
    assert owner_key in secret["data"]

    executor = executor_copy(cluster)
    assert "created (server dry run)" in create_dry_run(cluster, executor, tmp_path, "spark-driver")

    def secret_volume(spec: dict) -> None:
        spec["volumes"].append({"name": "stolen", "secret": {"secretName": "postgresql"}})
        spec["containers"][0]["volumeMounts"].append({"name": "stolen", "mountPath": "/stolen"})

    def owner_env(spec: dict) -> None:
        owner = {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "postgresql", "key": owner_key}}}
        spec["containers"][0]["env"].append(owner)

    def host_path(spec: dict) -> None:
        spec["volumes"].append({"name": "node", "hostPath": {"path": "/"}})

    def driver_account(spec: dict) -> None:
        spec["serviceAccountName"] = "spark-driver"

    for change, rule in (
        (secret_volume, SECRET_RULE),
        (owner_env, SECRET_RULE),
        (host_path, VOLUME_RULE),
        (driver_account, ACCOUNT_RULE),
    ):
        forged = copy.deepcopy(executor)
        change(forged["spec"])
        with pytest.raises(RuntimeError) as denied:
            create_dry_run(cluster, forged, tmp_path, "spark-driver")
        refusal = str(denied.value)
        assert f"ValidatingAdmissionPolicy '{ADMISSION_POLICY}'" in refusal, (change.__name__, refusal)
        assert any(m in refusal for m in messages if m.startswith(rule)), (change.__name__, refusal)
    stealing = copy.deepcopy(executor)
    secret_volume(stealing["spec"])
    assert "created (server dry run)" in create_dry_run(cluster, stealing, tmp_path)


def test_should_store_tickets_with_their_team_and_count_them_exactly(
    cluster: LocalCluster, phases: Phases
) -> None:
    """Tickets land in `tickets`, each with its type's team; once the producer stops and the jobs
    drain, `tickets_aggregation` equals the GROUP BY of `tickets`."""
    pipeline = Cluster(NAMESPACE)
    with phases.timed("until the first rows in tickets"):
        wait_until_running(pipeline.state, timeout_seconds=600)
    wrong_team = " OR ".join(f"(type = '{t}' AND team <> '{team}')" for t, team in TYPE_TEAMS.items())
    assert pipeline.psql(f"SELECT count(*) FROM tickets WHERE {wrong_team}").strip() == "0"

    stop_every_producer(cluster, pipeline)

    def drained() -> bool:
        grouped = pipeline.psql("SELECT type, count(*) FROM tickets GROUP BY type ORDER BY type")
        counted = pipeline.psql(
            "SELECT type, ticket_count FROM tickets_aggregation WHERE ticket_count > 0 ORDER BY type"
        )
        return bool(grouped.strip()) and grouped == counted

    with phases.timed("until the aggregation equals the GROUP BY"):
        wait_for("tickets_aggregation = GROUP BY of tickets", drained, timeout_seconds=300, poll_seconds=5)
    pipeline.scale_producer(1)


def postgresql_pod_shell(cluster: LocalCluster, script: str) -> tuple[int, str]:
    """Run `script` with sh in the PostgreSQL container; its exit code and its output."""
    done = cluster.run(
        "sh", "-c",
        f"kubectl exec -n {NAMESPACE} postgresql-0 -c postgresql -- sh -c {shlex.quote(script)} 2>&1;"
        " echo \"exit=$?\"",
    )  # fmt: skip
    output, _, code = done.rstrip().rpartition("exit=")
    return int(code), output


def test_should_reach_postgresql_over_tls_only(cluster: LocalCluster) -> None:
    """Every client connection that PostgreSQL holds is encrypted, the jobs' writer role among
    them (their sslmode is verify-full: they checked the generated certificate and its name);
    a connection without TLS is refused with the right password, and a client that trusts
    another CA refuses the server."""
    pipeline = Cluster(NAMESPACE)
    query = (
        "SELECT a.usename, bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
        " WHERE a.client_addr IS NOT NULL AND a.usename IS NOT NULL GROUP BY a.usename"
    )
    users = wait_for(
        "a connection of the jobs' writer role",
        lambda: (rows := dict(psql_rows(pipeline, query))).get("tickets_writer") is not None and rows,
        timeout_seconds=120,
    )
    assert set(users.values()) == {"t"}, users

    def owner_psql(conninfo: str) -> str:
        return (
            'PGPASSWORD="$POSTGRES_PASSWORD" psql -X -Atc "SELECT 1"'
            f' "user=$POSTGRES_USER dbname=$POSTGRES_DB {conninfo}"'
        )

    code, output = postgresql_pod_shell(cluster, owner_psql("host=127.0.0.1 sslmode=disable"))
    assert code != 0 and "no encryption" in output, output
    # The server's own certificate is no CA: a client trusting it alone cannot verify the chain.
    service = f"postgresql.{NAMESPACE}.svc.cluster.local"
    untrusting = f"host={service} sslmode=verify-full sslrootcert=/etc/postgresql/tls/tls.crt"
    code, output = postgresql_pod_shell(cluster, owner_psql(untrusting))
    assert code != 0 and "certificate verify failed" in output, output
    print(f"\nPostgreSQL connections by role, all over TLS: {sorted(users)}")


def test_should_own_the_database_by_a_role_without_superuser(cluster: LocalCluster) -> None:
    """The chart's init script made the owner `tickets` with CREATEROLE and without SUPERUSER,
    and the migrate Job, as that owner, made the writer and the reader, neither of which may
    create roles."""
    query = (
        "SELECT rolname, rolsuper, rolcreaterole FROM pg_roles"
        " WHERE rolname IN ('tickets', 'tickets_writer', 'tickets_reader') ORDER BY rolname"
    )
    assert psql_rows(Cluster(NAMESPACE), query) == [
        ("tickets", "f", "t"), ("tickets_reader", "f", "f"), ("tickets_writer", "f", "f"),
    ]  # fmt: skip


def test_should_produce_about_three_times_faster_with_three_producers(
    cluster: LocalCluster, phases: Phases
) -> None:
    """`kubectl scale deploy producer --replicas 3` makes the ticket rate, measured in
    PostgreSQL, about three times the rate of one replica."""
    pipeline = Cluster(NAMESPACE)
    cluster.kubectl("scale", "deploy", "producer", "--replicas", "1")
    wait_for("one producer ready", lambda: pipeline.producer_replicas() == (1, 1), 300)
    try:
        with phases.timed("rate with 1 and 3 producers"):
            one = produced_rate(pipeline, seconds=60)
            cluster.kubectl("scale", "deploy", "producer", "--replicas", "3")
            wait_for("three producers ready", lambda: pipeline.producer_replicas() == (3, 3), 300)
            three = produced_rate(pipeline, seconds=60)
    finally:
        cluster.kubectl("scale", "deploy", "producer", "--replicas", "1")
    print(f"\nticket rate: {one:.1f}/s with 1 producer, {three:.1f}/s with 3 ({three / one:.2f}x)")
    assert 2.4 <= three / one <= 3.6, (one, three)


def test_should_pass_helm_test_and_make_status(cluster: LocalCluster) -> None:
    """`helm test ticket-pipeline` passes, and `make status` reports both jobs RUNNING and rows."""
    cluster.helm("test", RELEASE, "--timeout", "10m", timeout=660)
    status = cluster.run("make", "--no-print-directory", "status", timeout=700)
    for app in SPARK_APPLICATIONS:
        assert f"{app:<12} RUNNING" in status, status
    assert "replicas ready" in status and "tickets" in status, status


# Policies of the release whose pods have ended by now: the hook Jobs' (deleted once they
# succeed) and the helm test's (Succeeded).
_POLICIES_OF_ENDED_PODS = {"kafka-topic", "postgresql-migrate", "test"}


def test_should_install_the_charts_network_policies_over_the_running_pipeline(cluster: LocalCluster) -> None:
    """The release's NetworkPolicies (networkPolicy.enable, on by default) are in the cluster as
    the chart renders them, and they select the live pods they are written for: the default deny
    and the DNS policy every pod of the release, each other policy its own component's pods
    (the Spark roles apart), and every pod of the release is selected by its own policy too. The
    checks before this one ran the whole flow with them installed. localcluster's bridge CNI does
    not enforce NetworkPolicies: this proves them admitted and aimed, not enforced; what they
    allow and deny is proved offline by tests/k8s/test_network_policies.py."""
    manifest = yaml.safe_load_all(cluster.helm("get", "manifest", RELEASE, "--namespace", NAMESPACE))
    rendered = {o["metadata"]["name"]: o for o in manifest if o and o["kind"] == "NetworkPolicy"}
    live = {o["metadata"]["name"]: o for o in cluster.get("networkpolicy")["items"]}
    assert {"default-deny", "dns", "producer", "postgresql", "enrichment-driver"} <= set(rendered)
    assert set(rendered) <= set(live), sorted(set(rendered) - set(live))
    for name, policy in rendered.items():
        assert live[name]["spec"]["podSelector"] == policy["spec"]["podSelector"], name
    pods = {
        p["metadata"]["name"]: p["metadata"].get("labels", {})
        for p in cluster.live_pods(f"app.kubernetes.io/instance={RELEASE}")
    }
    selected = {
        name: sorted(
            pod for pod, labels in pods.items() if selector_matches(policy["spec"]["podSelector"], labels)
        )
        for name, policy in rendered.items()
    }
    print("\nNetworkPolicies and the live pods they select (not enforced by localcluster's bridge CNI):")
    for name, names in selected.items():
        print(f"  {name:<22} {', '.join(names) or '(none live)'}")
    assert selected["default-deny"] == selected["dns"] == sorted(pods)
    for name, names in selected.items():
        assert names or name in _POLICIES_OF_ENDED_PODS, f"NetworkPolicy {name} selects no live pod"
    for role in ("driver", "executor"):
        for app in SPARK_APPLICATIONS:
            assert selected[f"{app}-{role}"] == sorted(
                pod for pod, labels in pods.items()
                if labels.get("spark-role") == role and labels.get("spark-app-name") == app
            ), (app, role)  # fmt: skip
    unselected = [pod for pod in pods if sum(pod in names for names in selected.values()) < 3]
    assert unselected == [], "pods with no policy of their own besides default-deny and dns"


def test_should_answer_on_each_spark_ui_through_port_forward(cluster: LocalCluster) -> None:
    """`kubectl port-forward` to each Spark UI Service answers 200 on the Spark REST API, which
    lists the running application, run by our image's Spark (the pom's spark.version) whatever
    Spark the operator submitted it with."""
    for app, port in (("enrichment", 4040), ("aggregation", 4041)):
        with cluster.port_forward(f"svc/{app}-ui-svc", port) as local_port:
            status, body = wait_for(
                f"{app} UI through port-forward",
                lambda local_port=local_port: http_get(f"http://127.0.0.1:{local_port}/api/v1/applications"),
                timeout_seconds=60,
                poll_seconds=2,
            )
        assert status == 200, body
        assert json.loads(body) and json.loads(body)[0]["attempts"][0]["completed"] is False, body
        assert json.loads(body)[0]["attempts"][0]["appSparkVersion"] == SPARK_VERSION, body


def test_should_serve_metrics_on_each_pods_metrics_port(cluster: LocalCluster) -> None:
    """The producer's and each driver's `metrics` port answers with its counts, through
    `kubectl port-forward`, and each driver serves Spark's own metrics on its UI port."""
    targets = [("deploy/producer", 9400, None), ("pod/enrichment-driver", 9401, 4040)]
    targets.append(("pod/aggregation-driver", 9402, 4041))
    for target, port, ui_port in targets:
        with cluster.port_forward(target, port) as local_port:
            url = f"http://127.0.0.1:{local_port}/metrics"
            status, body = wait_for(f"{target} metrics", lambda url=url: http_get(url), 60, 2)
            assert status == 200, body
            samples = scrape(url)
        if ui_port is None:
            assert value(samples, "ticket_pipeline_producer_tickets_acknowledged_total") > 0, body
            continue
        job = target.removeprefix("pod/").removesuffix("-driver")
        assert value(samples, "ticket_pipeline_batches_total", job_name=job) > 0, body
        with cluster.port_forward(target, ui_port) as local_port:
            url = f"http://127.0.0.1:{local_port}/metrics/prometheus"
            status, body = wait_for(f"{target} Spark's metrics", lambda url=url: http_get(url), 60, 2)
        assert status == 200 and "metrics_" in body, body[:2000]


# A ticket whose every field looks right but its created_at, year 0: Spark parsed it and
# PostgreSQL refused it, which put the enrichment driver into a restart loop (issue 20).
_YEAR_0_TICKET = {
    "ticket_id": "00000000-0000-4000-8000-00000000f00d", "client_id": "CLI-000000",
    "created_at": "0000-01-01T00:00:00.000Z", "request": "Bonjour", "type": "incident", "priority": "high",
}  # fmt: skip
_PRODUCE_ONE = (
    "import json, os, sys; from confluent_kafka import Producer;"
    " p = Producer({'bootstrap.servers': os.environ['KAFKA_BOOTSTRAP_SERVERS']});"
    " p.produce(os.environ['TICKETS_TOPIC'], key=b'hostile', value=sys.argv[1].encode());"
    " sys.exit(p.flush(30))"
)


def driver_starts(cluster: LocalCluster) -> dict[str, tuple[str, int]]:
    """Each job's driver pod: its uid and its container's restart count."""
    starts = {}
    for app in SPARK_APPLICATIONS:
        pod = cluster.get("pod", f"{app}-driver")
        restarts = sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))
        starts[app] = (pod["metadata"]["uid"], restarts)
    return starts


def test_should_store_the_tickets_after_a_record_that_postgresql_would_refuse(
    cluster: LocalCluster, phases: Phases
) -> None:
    """One ticket of year 0 produced mid-stream goes to tickets_rejected; neither driver pod
    restarts, and the tickets produced after it are stored."""
    pipeline = Cluster(NAMESPACE)
    pipeline.scale_producer(1)
    wait_for("one producer ready", lambda: pipeline.producer_replicas() == (1, 1), 300)
    before = driver_starts(cluster)
    value = json.dumps(_YEAR_0_TICKET)
    rejected = (
        "SELECT count(*) FROM tickets_rejected WHERE reason = 'bad timestamp: created_at'"
        f" AND raw_value_sha256 = decode('{hashlib.sha256(value.encode()).hexdigest()}', 'hex')"
    )
    cluster.kubectl("exec", "deploy/producer", "--", "python", "-c", _PRODUCE_ONE, value)
    with phases.timed("a year-0 ticket until the tickets after it are stored"):
        wait_for("the year-0 ticket in tickets_rejected", lambda: pipeline.psql(rejected).strip() == "1", 300)
        after = (
            "SELECT count(*) FROM tickets WHERE stored_at >"
            " (SELECT max(rejected_at) FROM tickets_rejected WHERE reason = 'bad timestamp: created_at')"
        )
        wait_for("100 tickets stored after it", lambda: int(pipeline.psql(after).strip()) >= 100, 300)
    assert driver_starts(cluster) == before
    assert (
        pipeline.psql(
            f"SELECT count(*) FROM tickets WHERE ticket_id = '{_YEAR_0_TICKET['ticket_id']}'"
        ).strip()
        == "0"
    )


def test_should_lose_and_double_no_ticket_when_a_driver_or_a_producer_pod_is_deleted(
    cluster: LocalCluster, phases: Phases
) -> None:
    """Deleting the enrichment driver makes the operator restart the job, which resumes from its
    checkpoint on the PVC; deleting a producer pod makes the Deployment replace it. Once the
    producers stop and the jobs drain, `tickets` holds exactly the ticket ids in the topic."""
    pipeline = Cluster(NAMESPACE)
    pipeline.scale_producer(1)
    wait_for("one producer ready", lambda: pipeline.producer_replicas() == (1, 1), 300)
    before = ticket_count(pipeline)
    old_driver = cluster.get("pod", "enrichment-driver")["metadata"]["uid"]
    with phases.timed("driver deleted until RUNNING again"):
        cluster.kubectl("delete", "pod", "enrichment-driver", "--wait=false")
        wait_for(
            "enrichment RUNNING again with a new driver",
            lambda: cluster.get("sparkapplication", "enrichment")["status"]
            .get("applicationState", {}).get("state") == "RUNNING"
            and [p for p in cluster.pods("spark-app-name=enrichment,spark-role=driver")
                 if p["status"]["phase"] == "Running" and p["metadata"]["uid"] != old_driver],
            timeout_seconds=600,
        )  # fmt: skip
    # The new driver resumes from the checkpoint on the PVC: its first micro-batch is not batch 0.
    first_batch = wait_for(
        "the new driver's first micro-batch",
        lambda: re.search(
            r"enrichment: batch (\d+),",
            cluster.kubectl("logs", "enrichment-driver", "-c", "spark-kubernetes-driver"),
        ),
        timeout_seconds=300,
    )
    print(f"\nthe new enrichment driver resumed at micro-batch {first_batch[1]}")
    assert int(first_batch[1]) > 0
    producer = cluster.pods("app.kubernetes.io/component=producer")[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", producer, "--wait=false")
    wait_for(
        "a new producer pod ready",
        lambda: [
            p for p in cluster.pods("app.kubernetes.io/component=producer")
            if p["metadata"]["name"] != producer
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ],
        timeout_seconds=300,
    )  # fmt: skip
    stored = grow_then_drain_to_the_topics_ids(
        cluster, pipeline, phases, after="the deletions", before=before
    )
    print(f"\nafter the deletions: {stored} tickets in the topic, all stored once")


def psql_rows(pipeline: Cluster, statement: str) -> list[tuple]:
    """The rows of a query run by psql in the PostgreSQL pod, whole numbers as int."""
    return [
        tuple(int(field) if field.isdigit() else field for field in line.split("|"))
        for line in pipeline.psql(statement).splitlines()
        if line
    ]


def test_should_show_what_postgresql_holds_on_the_dashboard_through_port_forward(
    cluster: LocalCluster,
) -> None:
    """The chart's dashboard Deployment, through `kubectl port-forward svc/dashboard`, in
    Debian's headless chromium: with the producers stopped and the jobs drained (the check
    before), the page shows the stored count, the counts per type and per team of PostgreSQL,
    no lag, and links to the Spark UIs where `make port-forward` puts them."""
    if BROWSER_MISSING:
        pytest.skip(BROWSER_MISSING)
    pipeline = Cluster(NAMESPACE)
    assert pipeline.producer_replicas() == (0, 0)
    with cluster.port_forward("svc/dashboard", 8050) as local_port:
        status, body = wait_for(
            "the dashboard's health through port-forward",
            lambda: http_get(f"http://127.0.0.1:{local_port}{HEALTH_PATH}"),
            timeout_seconds=60,
            poll_seconds=2,
        )
        assert status == 200, body
        # The pod listens on 0.0.0.0: the page asks for the login of the Secret `dashboard`.
        assert http_get(f"http://127.0.0.1:{local_port}/")[0] == 401
        password = base64.b64decode(
            cluster.kubectl("get", "secret", "dashboard", "-o", "jsonpath={.data.dashboard-password}")
        ).decode()
        with headless_chromium(basic_auth("admin", password)) as driver:
            check_page(
                driver,
                f"http://127.0.0.1:{local_port}/",
                lambda statement: psql_rows(pipeline, statement),
                {"http://localhost:4040/", "http://localhost:4041/"},
            )
    print(f"\nthe dashboard showed {ticket_count(pipeline)} tickets, as PostgreSQL holds")


def test_should_resume_and_keep_up_after_an_upgrade_with_more_partitions_and_two_executors(
    cluster: LocalCluster, phases: Phases
) -> None:
    """`helm upgrade` with 6 partitions and 2 executors per job: the topic Job grows the topic,
    the operator restarts both jobs with 2 executors each, they resume from their checkpoints
    and keep up: once the producer stops, `tickets` holds exactly the topic's ids again."""
    pipeline = Cluster(NAMESPACE)
    with phases.timed("helm upgrade until both jobs RUNNING with 2 executors"):
        cluster.helm(
            "upgrade", RELEASE, "charts/", "--namespace", NAMESPACE, "--values", str(CLUSTER_VALUES),
            "--set", "topic.partitions=6",
            "--set", "spark.enrichment.executor.instances=2",
            "--set", "spark.aggregation.executor.instances=2",
            "--wait", "--timeout", "10m", timeout=700,
        )  # fmt: skip
        for app in SPARK_APPLICATIONS:
            wait_for(
                f"{app} RUNNING with 2 executors",
                lambda app=app: cluster.get("sparkapplication", app)["status"]
                .get("applicationState", {}).get("state") == "RUNNING"
                and len([p for p in cluster.pods(f"spark-app-name={app},spark-role=executor")
                         if p["status"]["phase"] == "Running"]) == 2,
                timeout_seconds=900,
            )  # fmt: skip
    assert topic_partitions(cluster) == 6
    grow_then_drain_to_the_topics_ids(cluster, pipeline, phases, after="the upgrade")


def test_should_leave_what_readme_says_after_uninstall_and_its_tear_down(cluster: LocalCluster) -> None:
    """`helm uninstall` keeps the data volumes, the password Secret and the helm test pod, as
    docs/kubernetes.md says; its tear-down commands (all but `make kind-down`) then leave nothing of the
    release."""
    commands = tear_down_commands()
    assert commands[0] == "helm uninstall ticket-pipeline", commands
    cluster.run(*shlex.split(commands[0]), "--wait", timeout=600)
    instance = f"app.kubernetes.io/instance={RELEASE}"
    # `--wait` waits for the deleted objects, not for the pods their ReplicaSets leave behind,
    # which the garbage collector removes once their grace period ends (a dashboard pod was
    # still listed in one run): wait until only the helm test pod is left.
    wait_for(
        "the release's pods gone but the helm test's",
        lambda: {p["metadata"]["name"] for p in cluster.pods(instance)} <= {"test-tickets-reach-postgresql"},
        timeout_seconds=120,
    )
    kept = {
        (item["kind"], item["metadata"]["name"])
        for item in cluster.get("all,pvc,secret", "-l", instance)["items"]
    }
    volumes = {name for kind, name in kept if kind == "PersistentVolumeClaim"}
    assert volumes, kept
    assert kept - {("PersistentVolumeClaim", name) for name in volumes} == {
        ("Secret", "postgresql"),
        ("Pod", "test-tickets-reach-postgresql"),
    }, kept
    assert not cluster.get("sparkapplications")["items"]
    for command in commands[1:]:
        if not command.startswith("make kind-down"):
            cluster.run(*shlex.split(command), timeout=300)
    assert not cluster.get("all,pvc", "-l", instance)["items"]
    assert not cluster.get("secrets", "--field-selector", "metadata.name=postgresql")["items"]
