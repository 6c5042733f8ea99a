"""The producer against a real broker: delivery, keys, settings errors, clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime

import pytest
from confluent_kafka import Consumer

from core.contract import reject_reason
from core.kafka import KafkaConnection, admin_client, client_config
from core.scrape import scrape, total, value
from core.settings import REPO_ROOT, load
from producer import kafka_producer
from producer.kafka_producer import TicketProducer
from producer.settings import ProducerSettings
from producer.topic import ensure_topic
from scripts.embedded.ports import free_port

pytestmark = pytest.mark.integration


def run_producer(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        # No metrics endpoint unless a test asks for one: port 9400 may be in use (`make run`).
        env={**os.environ, "METRICS_PORT": "-1", **(env or {})},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def consume_all(kafka: KafkaConnection, topic: str, expected: int, timeout_seconds: float = 30) -> list:
    consumer = Consumer(client_config(kafka, {"group.id": f"check-{topic}", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    messages, deadline = [], time.monotonic() + timeout_seconds
    while len(messages) < expected and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is not None and not message.error():
            messages.append(message)
    consumer.close()
    return messages


def test_every_ticket_is_delivered_keyed_by_client_and_valid(kafka_connection, kafka_env, tmp_path):
    """--count 300 sends 300 valid tickets; a client's tickets all land in one partition."""
    topic, ledger = f"produce_{os.getpid()}_{time.time_ns()}", tmp_path / "ledger.txt"
    run = run_producer(
        "--topic",
        topic,
        "--rate",
        "0",
        "--count",
        "300",
        "--clients",
        "20",
        "--ledger-file",
        str(ledger),
        env=kafka_env,
    )
    assert run.returncode == 0, run.stderr
    assert "sent 300, acknowledged 300, failed 0" in run.stderr
    messages = consume_all(kafka_connection, topic, 300)
    assert len(messages) == 300
    assert all(reject_reason(m.value()) is None for m in messages)
    partitions = defaultdict(set)
    for m in messages:
        assert m.key().decode() == json.loads(m.value())["client_id"]
        partitions[m.key()].add(m.partition())
    assert all(len(p) == 1 for p in partitions.values())
    assert sorted(ledger.read_text().split()) == sorted(json.loads(m.value())["ticket_id"] for m in messages)


def test_the_topic_is_created_once_with_the_configured_partitions(kafka_connection):
    """ensure_topic creates a missing topic with N partitions and leaves an existing one alone."""
    admin = admin_client(kafka_connection)
    topic = f"created_{time.time_ns()}"
    assert ensure_topic(admin, topic, 5, 10) is True
    assert ensure_topic(admin, topic, 5, 10) is False
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 5


def test_sigterm_flushes_in_flight_tickets_and_exits_zero(kafka_connection, kafka_env, tmp_path):
    """A stopped producer loses nothing: every acknowledged ticket is in the topic."""
    topic, ledger = f"sigterm_{time.time_ns()}", tmp_path / "ledger.txt"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer",
            "--topic",
            topic,
            "--rate",
            "500",
            "--ledger-file",
            str(ledger),
        ],
        env={**os.environ, **kafka_env},
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while (not ledger.exists() or len(ledger.read_text().split()) < 200) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    acknowledged = ledger.read_text().split()
    assert len(acknowledged) >= 200
    messages = consume_all(kafka_connection, topic, len(acknowledged))
    assert sorted(json.loads(m.value())["ticket_id"] for m in messages) == sorted(acknowledged)


@pytest.mark.parametrize(
    ("args", "env", "code", "named"),
    [
        (["--rate", "-5"], {}, 2, "--rate / PRODUCER_RATE"),
        ([], {"TOPIC_PARTITIONS": "0"}, 2, "--partitions / TOPIC_PARTITIONS"),
        (
            ["--bootstrap-servers", "127.0.0.1:1", "--connect-timeout-seconds", "2"],
            {},
            1,
            "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1",
        ),
    ],
)
def test_bad_settings_fail_at_start_naming_the_setting(args, env, code, named):
    """An invalid rate or partition count, or an unreachable broker, stops the producer at once."""
    run = run_producer(*args, env=env, timeout=30)
    assert run.returncode == code
    assert named in run.stderr


def test_without_a_ledger_the_counters_are_still_exact(kafka_connection, kafka_env):
    """No per-ticket delivery callback then: acknowledged is derived, and still exact."""
    topic = f"noledger_{time.time_ns()}"
    run = run_producer(
        "--topic", topic, "--rate", "0", "--count", "30000", "--progress-interval-seconds", "0.1",
        env=kafka_env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    counters = re.finditer(r"sent (\d+), acknowledged (\d+), failed (\d+)", run.stderr)
    lines = [[int(n) for n in m.groups()] for m in counters]
    assert lines[-1] == [30000, 30000, 0]
    assert all(0 <= acknowledged <= sent for sent, acknowledged, _ in lines)
    messages = consume_all(kafka_connection, topic, 30000)
    assert len(messages) == 30000
    assert len({json.loads(m.value())["ticket_id"] for m in messages}) == 30000


def test_the_rate_spreads_tickets_over_time(kafka_connection, kafka_env):
    """--rate 400 --count 200 takes about half a second, sent in small bursts, not at once."""
    topic = f"rate_{time.time_ns()}"
    settings = load(
        ProducerSettings, ["--topic", topic, "--rate", "400", "--count", "200"], environ=kafka_env
    )
    producer = TicketProducer(settings)
    producer.check_broker()
    started = time.monotonic()
    counters = producer.run(report=lambda *_: None)
    elapsed = time.monotonic() - started
    assert (counters.sent, counters.acknowledged, counters.failed) == (200, 200, 0)
    assert 199 / 400 <= elapsed < 3
    messages = consume_all(kafka_connection, topic, 200)
    stamps = sorted(datetime.fromisoformat(json.loads(m.value())["created_at"]) for m in messages)
    assert (stamps[-1] - stamps[0]).total_seconds() >= 0.45
    # Spread over many milliseconds (a busy machine may delay a few, then catch up).
    assert len(set(stamps)) > 50


@pytest.mark.parametrize("ledger", [False, True])
def test_failed_deliveries_are_counted_not_acknowledged(tmp_path, monkeypatch, ledger):
    """Undeliverable tickets (no broker, short message timeout) end as failed, none acknowledged."""
    monkeypatch.setattr(
        kafka_producer,
        "_producer_config",
        lambda connection, settings, on_delivery, original=kafka_producer._producer_config: dict(
            original(connection, settings, on_delivery), **{"message.timeout.ms": 1000, "log_level": 0}
        ),
    )
    argv = ["--bootstrap-servers", "127.0.0.1:1", "--rate", "0", "--count", "50"]
    if ledger:
        argv += ["--ledger-file", str(tmp_path / "ledger.txt")]
    counters = TicketProducer(load(ProducerSettings, argv, environ={})).run(report=lambda *_: None)
    assert (counters.sent, counters.acknowledged, counters.failed) == (50, 0, 50)
    assert counters.errors == {"_MSG_TIMED_OUT": 50}
    if ledger:
        assert (tmp_path / "ledger.txt").read_text() == ""


def test_the_metrics_endpoint_counts_what_the_producer_logs(kafka_env):
    """While producing, /metrics shows sent >= acknowledged > 0 and the rate; after SIGTERM,
    the last log line has at least what was scraped."""
    port, topic = free_port(), f"metrics_{time.time_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "producer", "--topic", topic, "--rate", "200",
         "--progress-interval-seconds", "0.5", "--metrics-port", str(port)],
        env={**os.environ, **kafka_env}, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url, deadline, samples = f"http://127.0.0.1:{port}/metrics", time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                samples = scrape(url)
                rate = value(samples, "ticket_pipeline_producer_send_rate_tickets_per_second")
                if rate > 0 and value(samples, "ticket_pipeline_producer_tickets_acknowledged_total") > 0:
                    break
            time.sleep(0.2)
        sent = value(samples, "ticket_pipeline_producer_tickets_sent_total")
        acknowledged = value(samples, "ticket_pipeline_producer_tickets_acknowledged_total")
        assert sent >= acknowledged > 0, samples
        assert 100 < value(samples, "ticket_pipeline_producer_send_rate_tickets_per_second") < 400
        assert value(samples, "ticket_pipeline_producer_tickets_queued") >= 0
        assert total(samples, "ticket_pipeline_producer_delivery_errors_total") == 0
        assert value(samples, "ticket_pipeline_producer_client_restarts_total") == 0
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    final = [int(n) for n in re.findall(r"sent (\d+), acknowledged (\d+), failed (\d+)", stderr)[-1]]
    assert final[0] == final[1] >= sent and final[2] == 0


def test_a_taken_metrics_port_fails_at_start_naming_the_setting(kafka_env):
    with socket.create_server(("0.0.0.0", 0)) as taken:
        run = run_producer("--metrics-port", str(taken.getsockname()[1]), "--count", "1", env=kafka_env)
    assert run.returncode == 2
    assert "METRICS_PORT" in run.stderr
