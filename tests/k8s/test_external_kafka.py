"""externalKafka.bootstrapServers: the chart uses the user's Kafka-compatible broker instead of
deploying Redpanda, and every Kafka client of the chart points at it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import EXTERNAL_BOOTSTRAP_SERVERS
from .render import HelmError, containers, env_of, find, of_kind, render_chart, render_notes, walk_strings

EXTERNAL_SERVERS = EXTERNAL_BOOTSTRAP_SERVERS.split(",")
REDPANDA_BOOTSTRAP = "redpanda.default.svc.cluster.local:9092"


def _redpanda_objects(objects: list[dict[str, Any]]) -> list[str]:
    """'Kind/name' of every object that is Redpanda itself (the broker, not its clients)."""
    return [
        f"{obj['kind']}/{obj['metadata']['name']}"
        for obj in objects
        if obj["metadata"]["labels"].get("app.kubernetes.io/component") == "redpanda"
        or obj["metadata"]["name"].startswith("redpanda")
    ]


def _kafka_clients(objects: list[dict[str, Any]]) -> dict[str, str]:
    """KAFKA_BOOTSTRAP_SERVERS of the producer, the topic Job and both Spark drivers."""
    clients = {
        "producer": env_of(containers(find(objects, "Deployment", "producer"))[0]),
        "topic Job": env_of(containers(find(objects, "Job", "kafka-topic"))[0]),
    }
    for app in of_kind(objects, "SparkApplication"):
        clients[app["metadata"]["name"]] = env_of(app["spec"]["driver"])
    return {name: env["KAFKA_BOOTSTRAP_SERVERS"] for name, env in clients.items()}


def _console_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(find(objects, "ConfigMap", "console")["data"]["config.yaml"])


def test_should_render_redpanda_by_default(default_objects: list[dict]) -> None:
    """Without externalKafka.bootstrapServers the chart deploys Redpanda, its two Services, its
    NetworkPolicy and Console's admin API link to it (on the headless Service: the client Service
    serves the Kafka port only), and every client bootstraps from the Redpanda Service."""
    assert sorted(_redpanda_objects(default_objects)) == [
        "NetworkPolicy/redpanda",
        "Service/redpanda",
        "Service/redpanda-hl",
        "StatefulSet/redpanda",
    ]
    assert set(_kafka_clients(default_objects).values()) == {REDPANDA_BOOTSTRAP}
    console = _console_config(default_objects)
    assert console["kafka"]["brokers"] == [REDPANDA_BOOTSTRAP]
    assert console["redpanda"]["adminApi"]["urls"] == ["http://redpanda-hl.default.svc.cluster.local:9644"]
    assert [p["port"] for p in find(default_objects, "Service", "redpanda")["spec"]["ports"]] == [9092]


def test_should_render_no_redpanda_object_with_an_external_broker(external_objects: list[dict]) -> None:
    """With an external broker, no StatefulSet, Service, PVC or anything else of Redpanda is
    rendered, and no rendered text names the Redpanda Services."""
    assert _redpanda_objects(external_objects) == []
    assert of_kind(external_objects, "StatefulSet") == [find(external_objects, "StatefulSet", "postgresql")]
    texts = [text for obj in external_objects for text in walk_strings(obj)]
    assert not [text for text in texts if "redpanda.default.svc" in text or "redpanda-hl" in text]


def test_should_point_producer_jobs_topic_job_and_console_at_the_external_broker(
    external_objects: list[dict],
) -> None:
    """The producer, both Spark drivers and the topic Job get externalKafka.bootstrapServers as
    KAFKA_BOOTSTRAP_SERVERS; Console lists each of its brokers."""
    assert _kafka_clients(external_objects) == {
        "producer": EXTERNAL_BOOTSTRAP_SERVERS,
        "topic Job": EXTERNAL_BOOTSTRAP_SERVERS,
        "enrichment": EXTERNAL_BOOTSTRAP_SERVERS,
        "aggregation": EXTERNAL_BOOTSTRAP_SERVERS,
    }
    assert _console_config(external_objects)["kafka"]["brokers"] == EXTERNAL_SERVERS


def test_should_leave_the_redpanda_admin_api_out_of_console_with_an_external_broker(
    external_objects: list[dict],
) -> None:
    """Console's config has no `redpanda` section: the admin API exists only with Redpanda."""
    assert set(_console_config(external_objects)) == {"kafka", "server"}


def test_should_keep_the_topic_job_as_a_hook_of_the_producer_image_with_an_external_broker(
    default_objects: list[dict], external_objects: list[dict]
) -> None:
    """The topic Job is the same with either broker: a post-install/post-upgrade hook that runs
    `python -m producer.topic` from the producer image; only the bootstrap servers differ."""
    external_job = find(external_objects, "Job", "kafka-topic")
    assert external_job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    container = containers(external_job)[0]
    assert container["command"] == ["python", "-m", "producer.topic"]
    assert container["image"] == containers(find(external_objects, "Deployment", "producer"))[0]["image"]
    jobs = [find(default_objects, "Job", "kafka-topic"), external_job]
    for job in jobs:
        (bootstrap,) = [v for v in containers(job)[0]["env"] if v["name"] == "KAFKA_BOOTSTRAP_SERVERS"]
        bootstrap["value"] = "<broker>"
    assert jobs[0] == jobs[1]


def test_should_apply_the_topic_values_with_an_external_broker() -> None:
    """topic.name and topic.partitions reach the topic Job, the producer and the drivers."""
    objects = render_chart(
        {"externalKafka": {"bootstrapServers": "my-kafka:9092"}, "topic": {"partitions": 6}}
    )
    topic_job = env_of(containers(find(objects, "Job", "kafka-topic"))[0])
    producer = env_of(containers(find(objects, "Deployment", "producer"))[0])
    assert (topic_job["TOPIC_PARTITIONS"], producer["TOPIC_PARTITIONS"]) == ("6", "6")
    assert topic_job["KAFKA_BOOTSTRAP_SERVERS"] == producer["KAFKA_BOOTSTRAP_SERVERS"] == "my-kafka:9092"


def test_should_name_the_broker_in_use_in_the_notes() -> None:
    """NOTES.txt names Redpanda and its Service by default, and the external broker otherwise."""
    default = render_notes()
    assert f"Kafka API (Redpanda)   {REDPANDA_BOOTSTRAP}   topic client_tickets (3 partitions)" in default
    external = render_notes({"externalKafka": {"bootstrapServers": EXTERNAL_BOOTSTRAP_SERVERS}})
    assert f"Kafka API (external)   {EXTERNAL_BOOTSTRAP_SERVERS}   topic client_tickets" in external
    assert "no Redpanda is deployed" in external
    assert "Redpanda)" not in external


@pytest.mark.parametrize(
    "servers",
    [
        "my-kafka:9092",
        "b-1.msk.eu-west-3.amazonaws.com:9092,b-2.msk.eu-west-3.amazonaws.com:9092",
        "10.0.0.7:9092",
        "[fd00::7]:9092",
        "kafka.streaming.svc.cluster.local:9092",
    ],
)
def test_should_accept_one_or_more_host_port_bootstrap_servers(servers: str) -> None:
    """host:port, comma-separated: names, IPv4 and bracketed IPv6 addresses."""
    objects = render_chart({"externalKafka": {"bootstrapServers": servers}})
    assert _kafka_clients(objects)["producer"] == servers
    assert _console_config(objects)["kafka"]["brokers"] == servers.split(",")


@pytest.mark.parametrize(
    "servers",
    [
        "my-kafka",
        "my-kafka:",
        "my-kafka:port",
        "my-kafka:0",
        "my-kafka:9092,",
        "my-kafka:9092, other:9092",
        "PLAINTEXT://my-kafka:9092",
        "-kafka:9092",
        " ",
    ],
)
def test_should_reject_bootstrap_servers_that_are_not_host_port_lists(servers: str) -> None:
    """values.schema.json refuses anything but "" or host:port[,host:port...] at render time."""
    with pytest.raises(HelmError) as failure:
        render_chart({"externalKafka": {"bootstrapServers": servers}})
    assert "bootstrapServers" in failure.value.stderr
