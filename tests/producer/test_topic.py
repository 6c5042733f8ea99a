"""The topic Job's program, `python -m producer.topic`, against a real broker: it creates the
topic, grows it, never shrinks it, and fails naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from core.contract import TOPIC_CONFIG, TOPIC_MAX_MESSAGE_BYTES
from core.kafka import admin_client, client_config
from core.settings import REPO_ROOT, setting_fields
from producer.settings import ProducerSettings, TopicSettings

pytestmark = pytest.mark.integration


def run_topic(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run `python -m producer.topic` as the chart's Job does, with ``args`` and extra ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "producer.topic", *args],
        env=dict(os.environ, **(env or {})),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def partitions_of(admin: AdminClient, topic: str, expected: int, timeout_seconds: float = 10) -> int:
    """The topic's partition count, read until it is ``expected`` (metadata may lag a change)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        found = admin.list_topics(timeout=10).topics.get(topic)
        count = len(found.partitions) if found is not None else 0
        if count == expected or time.monotonic() >= deadline:
            return count
        time.sleep(0.2)


def create(admin: AdminClient, topic: str, partitions: int) -> None:
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


@pytest.fixture
def admin(kafka_connection) -> AdminClient:
    return admin_client(kafka_connection)


@pytest.fixture
def topic_name() -> str:
    return f"topic_job_{time.time_ns()}"


def test_reads_the_settings_the_producer_declares():
    """The Job's settings are the producer's own declarations of the broker, topic, partitions
    and connect timeout: same env vars, flags and defaults."""
    topic_fields = {f.name: f for f in setting_fields(TopicSettings)}
    assert {f.metadata["env"] for f in topic_fields.values()} == {
        "KAFKA_BOOTSTRAP_SERVERS", "TICKETS_TOPIC", "TOPIC_PARTITIONS", "KAFKA_CONNECT_TIMEOUT_SECONDS",
        "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SSL_CA_FILE",
    }  # fmt: skip
    producer_fields = {f.name: f for f in setting_fields(ProducerSettings)}
    for name, field in topic_fields.items():
        declared = producer_fields[name]
        assert (declared.metadata, declared.default) == (field.metadata, field.default), name


def test_creates_a_missing_topic_with_the_wanted_partitions(kafka_env, admin, topic_name):
    """A missing topic is created with TOPIC_PARTITIONS partitions, logged in one line; a second run
    changes nothing."""
    env = {**kafka_env, "TICKETS_TOPIC": topic_name, "TOPIC_PARTITIONS": "4"}
    run = run_topic(env=env)
    assert run.returncode == 0, run.stderr
    line = (
        f"topic {topic_name} at {kafka_env['KAFKA_BOOTSTRAP_SERVERS']} has 4 partitions (wanted 4): created"
    )
    assert run.stderr.strip().splitlines() == [run.stderr.strip()]  # one line, ending in `line`
    assert run.stderr.strip().endswith(line)
    assert partitions_of(admin, topic_name, 4) == 4
    again = run_topic(env=env)
    assert again.returncode == 0, again.stderr
    assert "has 4 partitions (wanted 4): left as it was" in again.stderr
    assert partitions_of(admin, topic_name, 4) == 4


def topic_config(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {
        name: entry.value for name, entry in admin.describe_configs([resource])[resource].result(30).items()
    }


def test_a_created_topic_admits_no_batch_larger_than_the_contract_says(
    kafka_connection, kafka_env, admin, topic_name
):
    """max.message.bytes = TOPIC_MAX_MESSAGE_BYTES: the producer's batches fit, and a record
    above it is refused by the broker (MSG_SIZE_TOO_LARGE) instead of reaching the jobs."""
    env = {**kafka_env, "TICKETS_TOPIC": topic_name}
    run = run_topic(env=env)
    assert run.returncode == 0, run.stderr
    configs = topic_config(admin, topic_name)
    assert {name: configs[name] for name in TOPIC_CONFIG} == TOPIC_CONFIG
    assert configs["max.message.bytes"] == str(TOPIC_MAX_MESSAGE_BYTES)
    errors = []
    producer = Producer(client_config(kafka_connection, {"linger.ms": 0}))
    for size in (TOPIC_MAX_MESSAGE_BYTES - 1024, TOPIC_MAX_MESSAGE_BYTES + 1024):
        producer.produce(topic_name, b"x" * size, on_delivery=lambda err, _m: errors.append(err))
        producer.flush(30)
    assert errors[0] is None
    assert errors[1] is not None and errors[1].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_grows_an_existing_topic_from_3_to_6_partitions(kafka_env, admin, topic_name):
    """A topic with fewer partitions gets new ones up to the wanted count."""
    create(admin, topic_name, 3)
    run = run_topic("--topic", topic_name, "--partitions", "6", env=kafka_env)
    assert run.returncode == 0, run.stderr
    assert "has 6 partitions (wanted 6): grown from 3" in run.stderr
    assert partitions_of(admin, topic_name, 6) == 6


def test_stamps_records_with_the_broker_time_on_an_existing_topic_that_kept_the_producers(
    kafka_connection, kafka_env, admin, topic_name
):
    """A topic created with CreateTime is switched to LogAppendTime, with a warning: a record
    then sent with a timestamp of 1970 gets the broker's time instead."""
    config = {"message.timestamp.type": "CreateTime"}
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1, config=config)])[
        topic_name
    ].result(30)
    env = {**kafka_env, "TICKETS_TOPIC": topic_name}
    run = run_topic(env=env)
    assert run.returncode == 0, run.stderr
    assert f"topic {topic_name} had message.timestamp.type=CreateTime: now LogAppendTime" in run.stderr
    assert topic_config(admin, topic_name)["message.timestamp.type"] == "LogAppendTime"
    assert "had message.timestamp.type" not in run_topic(env=env).stderr  # once is enough

    before_ms = int(time.time() * 1000)
    producer = Producer(client_config(kafka_connection))
    producer.produce(topic_name, b"forged", timestamp=1_000)
    assert producer.flush(30) == 0
    consumer = Consumer(
        client_config(kafka_connection, {"group.id": topic_name, "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic_name])
    message = None
    deadline = time.monotonic() + 30
    while message is None and time.monotonic() < deadline:
        message = consumer.poll(1)
    consumer.close()
    assert message is not None and message.error() is None
    kind, stamp = message.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert stamp >= before_ms - 1000


def test_leaves_6_partitions_when_asked_for_3(kafka_env, admin, topic_name):
    """Partitions are never removed: a topic with more than wanted is left as it is."""
    create(admin, topic_name, 6)
    run = run_topic("--topic", topic_name, "--partitions", "3", env=kafka_env)
    assert run.returncode == 0, run.stderr
    assert "has 6 partitions (wanted 3): left as it was" in run.stderr
    assert partitions_of(admin, topic_name, 6) == 6


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--partitions", "0"], {}), ([], {"TOPIC_PARTITIONS": "three"}), ([], {"TOPIC_PARTITIONS": "-2"})],
    ids=["flag 0", "env not a number", "env negative"],
)
def test_fails_with_status_2_naming_the_setting_on_a_bad_partition_count(kafka_env, args, env):
    """A bad partition count stops the program at once with status 2 and names the flag and env."""
    run = run_topic(*args, env={**kafka_env, **env})
    assert run.returncode == 2
    assert "invalid setting --partitions / TOPIC_PARTITIONS" in run.stderr


def test_fails_with_status_1_naming_the_setting_on_an_unreachable_broker():
    """No broker at KAFKA_BOOTSTRAP_SERVERS: status 1 once the connect timeout has passed, with a
    message naming the broker setting and the timeout setting."""
    started = time.monotonic()
    run = run_topic(env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_CONNECT_TIMEOUT_SECONDS": "2"})
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.stderr
    assert "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 after 2s" in run.stderr
    assert "--connect-timeout-seconds / KAFKA_CONNECT_TIMEOUT_SECONDS" in run.stderr
    assert 2 <= elapsed < 20
