"""The chart's NetworkPolicies let through the flows the pipeline needs, and nothing else.

Each value set of conftest.VALUE_SETS is rendered, its pods built from the rendered workloads
(Spark's driver and two executors per SparkApplication, labelled as the operator and Spark
label them) and placed in a small cluster next to the cluster DNS, a Prometheus, the Spark
operator, a pod of another namespace, a pod of the release's namespace that is not the
release's, and addresses outside the pods: the API server, an external broker, the Internet.
The evaluator of network_policy.py then decides each connection as the NetworkPolicy API
defines it. This proves the policies' intent offline; enforcing them is the network plugin's
work, which no test here runs (docs/security.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kubernetes_validate
import pytest

from .conftest import CUSTOM_VALUES, EXTERNAL_KAFKA_VALUES, external_bootstrap_servers
from .network_policy import Address, Cluster, Endpoint, Pod, release_pods
from .render import NAMESPACE, HelmError, find, of_kind, render_chart
from .validation import validate_core_object

KUBE_DNS = Pod("coredns-0", "kube-system", {"k8s-app": "kube-dns"}, {"dns": (53, "UDP")})
PROMETHEUS = Pod("prometheus-0", "monitoring", {"app.kubernetes.io/name": "prometheus"})
OPERATOR = Pod(
    "spark-operator-controller",
    "spark-operator",
    {"app.kubernetes.io/name": "spark-operator", "app.kubernetes.io/component": "controller"},
)
# `kubectl run` in the release's namespace, and a pod of another namespace.
STRANGER = Pod("stranger", NAMESPACE, {"run": "stranger"})
NEIGHBOUR = Pod("curl", "other", {"run": "curl"})
API_SERVICE = Address("10.96.0.1", "Service kubernetes")
API_SERVER = Address("172.18.0.2", "the API server")
INTERNET = Address("198.51.100.7", "the Internet")
PUBLIC_DNS = Address("192.0.2.53", "a public DNS server")
NAMESPACES = {NAMESPACE: {}, "kube-system": {}, "monitoring": {}, "spark-operator": {}, "other": {}}
OUTSIDERS = (STRANGER, NEIGHBOUR, PROMETHEUS, OPERATOR)


@dataclass(frozen=True)
class Flow:
    """A connection: from a source to a destination, on a port and protocol."""

    source: Endpoint
    destination: Endpoint
    port: int
    protocol: str = "TCP"

    def __str__(self) -> str:
        return f"{self.source} -> {self.destination}:{self.port}/{self.protocol}"


@dataclass
class Pipeline:
    """The release's pods in a small cluster, with the endpoints the pipeline talks to."""

    cluster: Cluster
    pods: dict[str, Pod]
    brokers: list[tuple[Endpoint, int]]
    database: tuple[Endpoint, int] | None
    scraped_ui: bool

    def pod(self, name: str) -> Pod:
        return self.pods[name]

    def drivers(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.labels.get("spark-role") == "driver"]

    def executors(self, app: str | None = None) -> list[Pod]:
        return [
            p
            for p in self.pods.values()
            if p.labels.get("spark-role") == "executor" and app in (None, p.labels["spark-app-name"])
        ]

    def kafka_clients(self) -> list[Pod]:
        named = [self.pods[n] for n in ("producer", "kafka-topic", "dashboard", "console") if n in self.pods]
        return named + self.drivers() + self.executors()

    def database_clients(self) -> list[Pod]:
        named = ("postgresql-migrate", "test-tickets-reach-postgresql", "dashboard")
        return [self.pods[n] for n in named if n in self.pods] + self.drivers() + self.executors()

    def ui_ports(self) -> list[tuple[Pod, int]]:
        """Each web page and its port: Console, the dashboard, each driver's Spark UI."""
        pages = [
            (self.pods[n], self.pods[n].ports["http"][0]) for n in ("console", "dashboard") if n in self.pods
        ]
        return pages + [(d, d.ports["spark-ui"][0]) for d in self.drivers()]

    # The flows the pipeline needs, by kind; needed_flows() is all of them.

    def dns_flows(self) -> list[Flow]:
        return [
            Flow(pod, KUBE_DNS, 53, protocol) for pod in self.pods.values() for protocol in ("UDP", "TCP")
        ]

    def kafka_flows(self) -> list[Flow]:
        flows = [
            Flow(client, broker, port) for client in self.kafka_clients() for broker, port in self.brokers
        ]
        if "redpanda-0" in self.pods:
            redpanda = self.pods["redpanda-0"]
            flows += [Flow(redpanda, redpanda, 9092), Flow(redpanda, redpanda, 33145)]
            if "console" in self.pods:
                flows.append(Flow(self.pods["console"], redpanda, 9644))
        return flows

    def database_flows(self) -> list[Flow]:
        assert self.database is not None
        database, port = self.database
        return [Flow(client, database, port) for client in self.database_clients()]

    def api_server_flows(self) -> list[Flow]:
        return [
            Flow(d, api, port)
            for d in self.drivers()
            for api, port in ((API_SERVICE, 443), (API_SERVER, 6443))
        ]

    def spark_flows(self) -> list[Flow]:
        flows = []
        for driver in self.drivers():
            executors = self.executors(driver.labels["spark-app-name"])
            for executor in executors:
                block_manager = executor.ports["blockmanager"][0]
                flows += [
                    Flow(executor, driver, driver.ports[n][0]) for n in ("driver-rpc-port", "blockmanager")
                ]
                flows += [
                    Flow(other, executor, block_manager)
                    for other in [driver, *executors]
                    if other is not executor
                ]
        return flows

    def scrape_flows(self) -> list[Flow]:
        flows = [
            Flow(PROMETHEUS, pod, pod.ports["metrics"][0])
            for pod in self.pods.values()
            if "metrics" in pod.ports
        ]
        if self.scraped_ui:
            flows += [Flow(PROMETHEUS, d, d.ports["spark-ui"][0]) for d in self.drivers()]
        return flows

    def needed_flows(self) -> list[Flow]:
        return [
            *self.dns_flows(), *self.kafka_flows(), *self.database_flows(), *self.api_server_flows(),
            *self.spark_flows(), *self.scrape_flows(),
        ]  # fmt: skip

    def blocked(self, flows: Iterable[Flow]) -> list[str]:
        """The flows the policies deny."""
        return [str(f) for f in flows if not self.cluster.allows(f.source, f.destination, f.port, f.protocol)]

    def let_through(self, flows: Iterable[Flow]) -> list[str]:
        """The flows the policies allow."""
        return [str(f) for f in flows if self.cluster.allows(f.source, f.destination, f.port, f.protocol)]


def _broker_endpoints(values: dict[str, Any] | None) -> tuple[list[tuple[Endpoint, int]], dict[str, dict]]:
    """The external broker's bootstrap servers as endpoints: a pod for a `<svc>.<ns>.svc...` name
    (in a namespace added to the cluster), an address from TEST-NET-3 for any other host."""
    endpoints: list[tuple[Endpoint, int]] = []
    namespaces: dict[str, dict] = {}
    for number, server in enumerate(external_bootstrap_servers(values)):
        host, port = server.rsplit(":", 1)
        labels = host.split(".")
        if ".svc." in host:
            namespaces[labels[-4]] = {}
            endpoints.append((Pod(labels[0], labels[-4], {"app": labels[-5]}), int(port)))
        else:
            endpoints.append((Address(f"203.0.113.{10 + number}", host), int(port)))
    return endpoints, namespaces


def pipeline_of(objects: list[dict[str, Any]], values: dict[str, Any] | None = None) -> Pipeline:
    """The pipeline that ``objects`` (rendered with ``values``) make, in its small cluster."""
    pods = release_pods(objects, NAMESPACE)
    brokers, broker_namespaces = _broker_endpoints(values)
    if "redpanda-0" in pods:
        brokers = [(pods["redpanda-0"], 9092)]
    external_database = ((values or {}).get("externalPostgresql") or {}).get("host")
    if "postgresql-0" in pods:
        database: tuple[Endpoint, int] | None = (pods["postgresql-0"], 5432)
    elif external_database:
        port = int(values["externalPostgresql"].get("port", 5432))
        database = (Address("203.0.113.50", external_database), port)
    else:
        database = None
    cluster = Cluster(of_kind(objects, "NetworkPolicy"), {**NAMESPACES, **broker_namespaces}, NAMESPACE)
    scraped_ui = bool(of_kind(objects, "PodMonitor") or of_kind(objects, "ServiceMonitor"))
    return Pipeline(cluster, pods, brokers, database, scraped_ui)


@pytest.fixture(scope="module")
def pipeline(rendered: list[dict[str, Any]], values_under_test: dict[str, Any] | None) -> Pipeline:
    """The pipeline of each value set of conftest.VALUE_SETS."""
    return pipeline_of(rendered, values_under_test)


# --- what is rendered --------------------------------------------------------------------------


def test_should_render_a_default_deny_and_a_policy_per_pod_by_default(default_objects: list[dict]) -> None:
    """networkPolicy.enable is on by default: a default deny, DNS for every pod, and one policy per
    component's pods, each Spark job's drivers and executors apart."""
    names = {policy["metadata"]["name"] for policy in of_kind(default_objects, "NetworkPolicy")}
    assert names == {
        "default-deny", "dns", "redpanda", "postgresql", "console", "dashboard", "producer",
        "kafka-topic", "postgresql-migrate", "test", "enrichment-driver", "enrichment-executor",
        "aggregation-driver", "aggregation-executor",
    }  # fmt: skip


def test_should_deny_every_pod_of_the_release_all_traffic_but_what_a_policy_opens(
    rendered: list[dict], pipeline: Pipeline
) -> None:
    """`default-deny` has no rule and selects every pod of the release, both ways, and each pod is
    also selected by its own policy: nothing of the release runs unisolated."""
    deny = find(rendered, "NetworkPolicy", "default-deny")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny
    for pod in pipeline.pods.values():
        for direction in ("Ingress", "Egress"):
            names = [p["metadata"]["name"] for p in pipeline.cluster.selecting(pod, direction)]
            assert "default-deny" in names, (pod.name, direction)
            assert len(names) >= 2, (pod.name, direction, names)
    for outsider in OUTSIDERS:
        assert pipeline.cluster.selecting(outsider, "Ingress") == []


def test_should_validate_every_network_policy_strictly(rendered: list[dict]) -> None:
    """Each NetworkPolicy passes the strict validation of every core object (the Kubernetes API
    schema of the kind node's version, unknown fields refused)."""
    policies = of_kind(rendered, "NetworkPolicy")
    assert policies
    errors = []
    for policy in policies:
        try:
            validate_core_object(policy)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{policy['metadata']['name']}: {error.message}")
    assert errors == []


def test_should_render_no_network_policy_when_disabled() -> None:
    """networkPolicy.enable false renders none (a random Spark port is then accepted)."""
    objects = render_chart({"networkPolicy": {"enable": False}})
    assert of_kind(objects, "NetworkPolicy") == []
    random = {"networkPolicy": {"enable": False}, "spark": {"sparkConf": {"spark.blockManager.port": "0"}}}
    assert of_kind(render_chart(random), "NetworkPolicy") == []


# --- the flows the pipeline needs --------------------------------------------------------------


def test_should_let_every_pod_of_the_release_resolve_names_with_the_cluster_dns(pipeline: Pipeline) -> None:
    """Every pod may query kube-dns on UDP and TCP 53, and no other DNS server."""
    assert pipeline.blocked(pipeline.dns_flows()) == []
    assert pipeline.let_through(Flow(pod, PUBLIC_DNS, 53, "UDP") for pod in pipeline.pods.values()) == []


def test_should_let_every_kafka_client_reach_the_broker_in_use(pipeline: Pipeline) -> None:
    """The producer, the topic Job, the dashboard, Console, and each job's driver and executors
    reach the chart's Redpanda on 9092, or each external bootstrap server on its port."""
    flows = [Flow(c, broker, port) for c in pipeline.kafka_clients() for broker, port in pipeline.brokers]
    assert len(flows) >= 8
    assert pipeline.blocked(flows) == []


@pytest.fixture(scope="module")
def redpanda_pipelines(default_objects: list[dict], custom_objects: list[dict]) -> list[Pipeline]:
    """The pipelines of the value sets that deploy Redpanda: the defaults and the custom values,
    and the defaults without Console."""
    no_console = render_chart({"console": {"enable": False}})
    return [pipeline_of(default_objects), pipeline_of(custom_objects, CUSTOM_VALUES), pipeline_of(no_console)]


def test_should_let_redpanda_reach_its_own_kafka_and_rpc_ports_only(
    redpanda_pipelines: list[Pipeline],
) -> None:
    """The broker's HTTP proxy and schema registry are clients of its Kafka address, and brokers
    talk RPC (33145) to each other: both to Redpanda only, and nobody else gets the RPC port."""
    for pipeline in redpanda_pipelines:
        redpanda = pipeline.pod("redpanda-0")
        assert pipeline.blocked([Flow(redpanda, redpanda, 9092), Flow(redpanda, redpanda, 33145)]) == []
        others = [*pipeline.pods.values(), *OUTSIDERS]
        assert pipeline.let_through(Flow(p, redpanda, 33145) for p in others if p is not redpanda) == []


def test_should_let_console_alone_reach_the_redpanda_admin_api(redpanda_pipelines: list[Pipeline]) -> None:
    """9644 (served on the headless Service only) is open to Console, and to no other pod of the
    release or of any namespace; without Console, to none."""
    assert "console" not in redpanda_pipelines[-1].pods
    for pipeline in redpanda_pipelines:
        redpanda = pipeline.pod("redpanda-0")
        console = pipeline.pods.get("console")
        if console is not None:
            assert pipeline.blocked([Flow(console, redpanda, 9644)]) == []
        others = [p for p in [*pipeline.pods.values(), *OUTSIDERS] if p not in (console, redpanda)]
        assert pipeline.let_through(Flow(p, redpanda, 9644) for p in others) == []


def test_should_let_every_database_client_reach_postgresql(pipeline: Pipeline) -> None:
    """The migrate Job, the helm test, the dashboard, and each job's driver (its wait-for-schema
    too) and executors (which stage each micro-batch) reach PostgreSQL."""
    flows = pipeline.database_flows()
    assert len(flows) == 3 + 3 * 2
    assert pipeline.blocked(flows) == []


def test_should_let_the_drivers_reach_the_kubernetes_api_server(pipeline: Pipeline) -> None:
    """A driver creates its executors: it reaches the `kubernetes` Service on 443 and the API
    server's endpoint on 6443 (a plugin may see either); no other pod of the release may."""
    assert len(pipeline.api_server_flows()) == 4
    assert pipeline.blocked(pipeline.api_server_flows()) == []
    others = [pod for pod in pipeline.pods.values() if pod.labels.get("spark-role") != "driver"]
    api = [(API_SERVICE, 443), (API_SERVER, 6443)]
    assert pipeline.let_through(Flow(o, a, p) for o in others for a, p in api) == []


def test_should_let_each_driver_and_its_executors_reach_each_others_spark_ports(pipeline: Pipeline) -> None:
    """Executors connect to their driver's RPC and block manager; the driver and the other
    executors fetch blocks from each executor's block manager, on the ports the
    SparkApplication sets (the executors' is fixed by the chart: Spark's default is random)."""
    assert [len(pipeline.executors(d.labels["spark-app-name"])) for d in pipeline.drivers()] == [2, 2]
    flows = pipeline.spark_flows()
    assert len(flows) == 2 * (2 * 2 + 2 + 2)
    assert pipeline.blocked(flows) == []


def test_should_let_prometheus_scrape_the_metrics_ports(pipeline: Pipeline) -> None:
    """Any pod of any namespace (networkPolicy.metrics.from by default) scrapes the producer's and
    the drivers' metrics ports; the drivers' UI ports, which serve Spark's own metrics, only when
    the chart renders PodMonitors or ServiceMonitors."""
    scrapes = pipeline.scrape_flows()
    assert {f.destination.name for f in scrapes} >= {"enrichment-driver", "aggregation-driver"}
    assert pipeline.blocked([*scrapes, *(Flow(NEIGHBOUR, f.destination, f.port) for f in scrapes)]) == []
    ui = [Flow(PROMETHEUS, d, d.ports["spark-ui"][0]) for d in pipeline.drivers()]
    assert (pipeline.let_through(ui) if pipeline.scraped_ui else pipeline.blocked(ui)) == [str(f) for f in ui]


# --- what stays closed -------------------------------------------------------------------------


def test_should_keep_the_pods_that_only_use_kafka_away_from_postgresql(pipeline: Pipeline) -> None:
    """The producer, the topic Job, Console and the broker never reach PostgreSQL."""
    assert pipeline.database is not None
    database, port = pipeline.database
    kafka_only = [
        pipeline.pods[n] for n in ("producer", "kafka-topic", "console", "redpanda-0") if n in pipeline.pods
    ]
    assert len(kafka_only) >= 2
    assert pipeline.let_through(Flow(p, database, port) for p in kafka_only) == []


def test_should_keep_every_pod_away_from_console_the_dashboard_and_the_spark_uis(pipeline: Pipeline) -> None:
    """No pod, of the release or not, opens a web page: Console, the dashboard and the Spark UIs
    are for `kubectl port-forward`, which NetworkPolicies do not see (it reaches the pod's
    loopback), unless networkPolicy.ui.from opens them. With the chart's PodMonitors or
    ServiceMonitors, the drivers' UI ports serve Spark's metrics to networkPolicy.metrics.from
    (the test above): then only Console and the dashboard stay closed."""
    flows = [
        Flow(source, page, port)
        for page, port in pipeline.ui_ports()
        for source in [*pipeline.pods.values(), *OUTSIDERS]
        if source is not page and not (pipeline.scraped_ui and "spark-ui" in page.ports)
    ]
    assert len(flows) > 20
    assert pipeline.let_through(flows) == []


def test_should_keep_other_namespaces_and_strangers_away_from_the_database_and_the_broker(
    pipeline: Pipeline,
) -> None:
    """A pod of another namespace, a pod of the release's namespace that is not the release's,
    the Spark operator and Prometheus reach neither PostgreSQL nor the chart's broker."""
    assert pipeline.database is not None
    targets = [pipeline.database]
    if "redpanda-0" in pipeline.pods:
        targets += [(pipeline.pod("redpanda-0"), port) for port in (9092, 9644, 33145)]
    flows = [Flow(o, t, port) for o in OUTSIDERS for t, port in targets if isinstance(t, Pod)]
    assert pipeline.let_through(flows) == []


def test_should_keep_the_two_spark_jobs_and_their_executors_apart(pipeline: Pipeline) -> None:
    """The executors of one job reach neither the driver nor the executors of the other; an
    executor gets no other port of its driver (its UI, its metrics)."""
    enrichment, aggregation = pipeline.pod("enrichment-driver"), pipeline.pod("aggregation-driver")
    flows = [
        Flow(pipeline.executors("enrichment")[0], aggregation, aggregation.ports["driver-rpc-port"][0]),
        Flow(pipeline.executors("aggregation")[0], enrichment, enrichment.ports["blockmanager"][0]),
        Flow(pipeline.executors("aggregation")[0], pipeline.executors("enrichment")[0], 7079),
        Flow(aggregation, pipeline.executors("enrichment")[0], 7079),
        Flow(pipeline.executors("enrichment")[0], enrichment, enrichment.ports["spark-ui"][0]),
        Flow(pipeline.executors("enrichment")[0], enrichment, enrichment.ports["metrics"][0]),
    ]
    assert pipeline.let_through(flows) == []


def test_should_keep_the_spark_operator_away_from_the_pipelines_pods(pipeline: Pipeline) -> None:
    """The operator's controller and webhook never connect to our pods (the API server calls the
    webhook, and the operator reads the drivers' state from the API server)."""
    flows = [
        Flow(OPERATOR, pod, port)
        for pod in pipeline.pods.values()
        for name, (port, _) in {**pod.ports, "rpc": (7078, "TCP")}.items()
        # The metrics ports are open to every pod by default, and so is Spark's UI port with the
        # chart's monitors (networkPolicy.metrics.from).
        if name != "metrics" and not (name == "spark-ui" and pipeline.scraped_ui)
    ]
    assert flows
    assert pipeline.let_through(flows) == []


def test_should_keep_the_pods_off_every_other_address_and_port(pipeline: Pipeline) -> None:
    """The Internet, the API server but for the drivers, another namespace's pods, the broker and
    the database on other ports: none reachable. PostgreSQL and Redpanda connect to nothing else."""
    flows = [Flow(p, INTERNET, 80) for p in pipeline.pods.values()]
    flows += [Flow(p, NEIGHBOUR, 8080) for p in pipeline.pods.values()]
    flows += [Flow(c, broker, 22) for c in pipeline.kafka_clients() for broker, _ in pipeline.brokers]
    assert pipeline.database is not None
    flows += [Flow(c, pipeline.database[0], 22) for c in pipeline.database_clients()]
    for server in ("postgresql-0", "redpanda-0"):
        if server in pipeline.pods:
            flows += [Flow(pipeline.pod(server), INTERNET, 443), Flow(pipeline.pod(server), API_SERVER, 6443)]
    if "postgresql-0" in pipeline.pods and "redpanda-0" in pipeline.pods:
        flows.append(Flow(pipeline.pod("postgresql-0"), pipeline.pod("redpanda-0"), 9092))
    assert pipeline.let_through(flows) == []


def test_should_keep_the_flows_with_the_executor_policy_that_spark_42_adds(pipeline: Pipeline) -> None:
    """Spark 4.2's spark-submit adds a policy per application: its executors admit its own pods on
    every port (NetworkPolicyFeatureStep). With it, every needed flow still passes, and it opens
    nothing to another job or an outsider."""
    spark_policies = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"{app}-0000-policy"},
            "spec": {
                "podSelector": {"matchLabels": {"spark-role": "executor", "spark-app-selector": selector}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"spark-app-selector": selector}}}]}],
            },
        }
        for app in ("enrichment", "aggregation")
        for selector in [pipeline.executors(app)[0].labels["spark-app-selector"]]
    ]
    policies = [policy for _, policy in pipeline.cluster.policies]
    with_spark = dataclasses.replace(
        pipeline, cluster=Cluster([*policies, *spark_policies], pipeline.cluster.namespaces, NAMESPACE)
    )
    assert with_spark.blocked(with_spark.needed_flows()) == []
    executor = with_spark.executors("enrichment")[0]
    strangers = [with_spark.executors("aggregation")[0], with_spark.pod("aggregation-driver"), *OUTSIDERS]
    strangers += [with_spark.pods[n] for n in ("producer", "dashboard") if n in with_spark.pods]
    assert with_spark.let_through(Flow(s, executor, port) for s in strangers for port in (7079, 22)) == []


# --- the values that widen or narrow them ------------------------------------------------------


def test_should_open_the_pages_to_the_peers_of_network_policy_ui_from() -> None:
    """networkPolicy.ui.from (e.g. an ingress controller's namespace) may open Console, the
    dashboard and the Spark UIs, on their ports only; other pods stay out."""
    ingress_nginx = Pod("controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
    pipeline = pipeline_of(render_chart({"networkPolicy": {"ui": {"from": peers}}}))
    pipeline.cluster.namespaces["ingress-nginx"] = {"kubernetes.io/metadata.name": "ingress-nginx"}
    pages = pipeline.ui_ports()
    assert len(pages) == 4
    assert pipeline.blocked(Flow(ingress_nginx, page, port) for page, port in pages) == []
    assert pipeline.let_through(Flow(NEIGHBOUR, page, port) for page, port in pages) == []
    assert pipeline.let_through([Flow(ingress_nginx, pipeline.pod("postgresql-0"), 5432)]) == []


def test_should_scrape_from_the_peers_of_network_policy_metrics_from_only() -> None:
    """networkPolicy.metrics.from narrows the scrapers (here to the `monitoring` namespace); an
    empty list closes the metrics ports to every pod."""
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    narrowed = pipeline_of(render_chart({**CUSTOM_VALUES, "networkPolicy": {"metrics": {"from": peers}}}))
    driver = narrowed.pod("enrichment-driver")
    scrapes = [(driver, driver.ports["metrics"][0]), (driver, driver.ports["spark-ui"][0])]
    scrapes.append((narrowed.pod("producer"), narrowed.pod("producer").ports["metrics"][0]))
    assert narrowed.blocked(Flow(PROMETHEUS, pod, port) for pod, port in scrapes) == []
    assert narrowed.let_through(Flow(NEIGHBOUR, pod, port) for pod, port in scrapes) == []
    closed = pipeline_of(render_chart({"networkPolicy": {"metrics": {"from": []}}}))
    assert closed.let_through([Flow(PROMETHEUS, closed.pod("producer"), 9400)]) == []


def test_should_reach_the_external_broker_only_where_network_policy_external_kafka_says() -> None:
    """The external broker's ports default to those of bootstrapServers, at any address;
    networkPolicy.externalKafka.ports and .to replace them, e.g. with the brokers' own
    addresses and a port they advertise."""
    default = pipeline_of(render_chart(EXTERNAL_KAFKA_VALUES), EXTERNAL_KAFKA_VALUES)
    producer = default.pod("producer")
    assert default.blocked([Flow(producer, INTERNET, 9092)]) == []
    assert default.let_through([Flow(producer, INTERNET, 9093)]) == []
    narrowed_values = {
        **EXTERNAL_KAFKA_VALUES,
        "networkPolicy": {
            "externalKafka": {"ports": [9092, 9094], "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}
        },
    }
    narrowed = pipeline_of(render_chart(narrowed_values), narrowed_values)
    broker = Address("203.0.113.10", "kafka.example.internal")
    producer = narrowed.pod("producer")
    assert narrowed.blocked([Flow(producer, broker, 9092), Flow(producer, broker, 9094)]) == []
    assert narrowed.let_through([Flow(producer, INTERNET, 9092), Flow(producer, broker, 9093)]) == []


def test_should_open_the_ports_of_every_bootstrap_server_once() -> None:
    """Each port of externalKafka.bootstrapServers appears once in a client's Kafka rule, an
    IPv6 address's too; no Redpanda rule is left."""
    values = {"externalKafka": {"bootstrapServers": "a.example:9096,b.example:9096,[2001:db8::1]:9196"}}
    producer = find(render_chart(values), "NetworkPolicy", "producer")
    (rule,) = producer["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": p} for p in (9096, 9196)]
    assert "to" not in rule


def test_should_reach_an_external_postgresql_on_its_port_only() -> None:
    """With externalPostgresql.host, no PostgreSQL policy is rendered; the database's clients
    reach any address on externalPostgresql.port, or networkPolicy.externalPostgresql.to only,
    and no other pod reaches it."""
    values: dict[str, Any] = {
        "externalPostgresql": {"host": "tickets.example.internal", "port": 6432},
        "postgresql": {"auth": {"existingSecret": "pipeline-db"}},
    }
    objects = render_chart(values)
    assert "postgresql" not in {p["metadata"]["name"] for p in of_kind(objects, "NetworkPolicy")}
    pipeline = pipeline_of(objects, values)
    assert pipeline.blocked(pipeline.needed_flows()) == []
    database = pipeline.database[0] if pipeline.database else None
    assert isinstance(database, Address)
    assert pipeline.let_through([Flow(pipeline.pod("producer"), database, 6432)]) == []
    assert pipeline.let_through(Flow(c, database, 5432) for c in pipeline.database_clients()) == []
    narrowed_values = {
        **values,
        "networkPolicy": {"externalPostgresql": {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}},
    }
    narrowed = pipeline_of(render_chart(narrowed_values), narrowed_values)
    driver = narrowed.pod("enrichment-driver")
    assert narrowed.blocked([Flow(driver, Address("10.1.2.3"), 6432)]) == []
    assert narrowed.let_through([Flow(driver, database, 6432)]) == []


def test_should_narrow_the_api_server_to_network_policy_kube_api_server_to() -> None:
    """networkPolicy.kubeApiServer.to (e.g. the control plane's addresses) replaces `any address`."""
    values = {"networkPolicy": {"kubeApiServer": {"to": [{"ipBlock": {"cidr": "172.18.0.2/32"}}]}}}
    narrowed = pipeline_of(render_chart(values))
    driver = narrowed.pod("enrichment-driver")
    assert narrowed.blocked([Flow(driver, API_SERVER, 6443)]) == []
    assert narrowed.let_through([Flow(driver, INTERNET, 443), Flow(driver, API_SERVICE, 443)]) == []


def test_should_open_the_spark_ports_that_spark_spark_conf_sets() -> None:
    """Ports set in spark.sparkConf win over Spark's defaults, in the SparkApplications and in
    the policies alike; a random port (0) fails the install, since no policy could open it."""
    conf = {"spark.driver.port": "7100", "spark.blockManager.port": "7200"}
    objects = render_chart({"spark": {"sparkConf": conf}})
    for app in of_kind(objects, "SparkApplication"):
        assert {k: app["spec"]["sparkConf"][k] for k in conf} == conf
    pipeline = pipeline_of(objects)
    driver, executor = pipeline.pod("aggregation-driver"), pipeline.executors("aggregation")[0]
    assert driver.ports["driver-rpc-port"][0] == 7100 and executor.ports["blockmanager"][0] == 7200
    assert (
        pipeline.blocked(
            [Flow(executor, driver, 7100), Flow(executor, driver, 7200), Flow(driver, executor, 7200)]
        )
        == []
    )
    assert pipeline.let_through([Flow(executor, driver, 7078), Flow(driver, executor, 7079)]) == []
    with pytest.raises(HelmError, match="random"):
        render_chart({"spark": {"sparkConf": {"spark.blockManager.port": "0"}}})


def test_should_fix_the_executors_block_manager_port_in_both_spark_applications(
    default_objects: list[dict],
) -> None:
    """Spark binds an executor's block manager to a random port unless spark.blockManager.port
    is set: the chart sets it to 7079, Spark's default for the driver's."""
    apps = of_kind(default_objects, "SparkApplication")
    assert [app["spec"]["sparkConf"]["spark.blockManager.port"] for app in apps] == ["7079", "7079"]


def test_should_serve_the_admin_api_on_the_headless_service_only(default_objects: list[dict]) -> None:
    """The client Service, which every Kafka client resolves, carries the Kafka port alone; the
    admin API is on the headless Service, where Console reaches it."""
    ports = {
        s["metadata"]["name"]: [p["port"] for p in s["spec"]["ports"]]
        for s in of_kind(default_objects, "Service")
    }
    assert ports["redpanda"] == [9092]
    assert 9644 in ports["redpanda-hl"]
