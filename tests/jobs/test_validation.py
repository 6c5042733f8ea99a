"""Spark validation and enrichment on static DataFrames, against the Python twin."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import TYPE_TEAMS, reject_reason
from jobs.aggregation import verdicts
from jobs.counts_sink import countable
from jobs.enrichment import enrich
from jobs.tickets_sink import split
from jobs.validation import classify
from producer.generator import TicketGenerator, encode
from tests.core.strategies import EDGE_RECORDS, VALID, VALID_EDGES, records, with_

KAFKA_SCHEMA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"

CORPUS: list[bytes | None] = [
    None,
    b"",
    b"\xff\xfe\xfd",
    b"caf\xe9",
    b'{"ticket_id": "abc"',
    b"not json at all",
    b"[]",
    b"42",
    b'"a string"',
    b"null",
    b"{}",
    with_(type=...),
    with_(created_at=...),
    with_(channel="email"),
    with_(type=None),
    with_(priority=3),
    with_(request=["a"]),
    with_(type="bug"),
    with_(priority="URGENT"),
    with_(created_at="hier"),
    with_(created_at="2026-11-31T10:00:00.000Z"),
    with_(created_at=1732790759),
    with_(request=""),
    with_(request="x" * 5000),
    with_(client_id="42"),
    with_(ticket_id="6F1C2B0E-3D4A-4B5C-8D9E-0F1A2B3C4D5E"),
    b"x" * 70_000,
    # Content after the JSON value: Spark's parser alone would ignore it.
    with_() + b" trailing",
    with_() + b" {}",
    b'""\x01',
    b"1 2",
    b"[1]]",
    *(raw for raw, _ in EDGE_RECORDS.values()),
]


def kafka_frame(spark, values):
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(b"k", v, "client_tickets", 0, i, now) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def test_spark_gives_each_record_of_the_corpus_the_same_verdict_as_python(spark):
    """Every record of the hostile corpus, and each edge the contract decided, gets the
    reason of core.contract.reject_reason; the valid edges stay valid in both."""
    corpus = [*CORPUS, *VALID_EDGES.values()]
    rows = classify(kafka_frame(spark, corpus)).select("reason").orderBy("kafka_offset").collect()
    assert [r.reason for r in rows] == [reject_reason(v) for v in corpus]
    assert sum(r.reason is None for r in rows) == len(VALID_EDGES)


def test_a_valid_ticket_is_typed_and_routed_to_its_team(spark):
    """Valid tickets get a NULL reason, a parsed created_at and the team of their type."""
    generator = TicketGenerator(seed=11)
    tickets = [generator.ticket() for _ in range(60)]
    rows = classify(kafka_frame(spark, [encode(t) for t in tickets])).orderBy("kafka_offset").collect()
    for ticket, row in zip(tickets, rows, strict=True):
        assert row.reason is None
        assert row.ticket_id == ticket["ticket_id"]
        assert row.team == TYPE_TEAMS[ticket["type"]]
        assert row.created_at.isoformat(timespec="milliseconds") == ticket["created_at"][:23]


def test_enrichment_splits_a_batch_into_stored_and_rejected_rows(spark):
    """enrich + split keep valid tickets with lineage and rejects with their raw bytes in hex."""
    values = [with_(), b"{oops", with_(type="bug")]
    stamp = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    valid, rejected = split(enrich(kafka_frame(spark, values)).toArrow(), stamp)
    assert valid.column("ticket_id").to_pylist() == [VALID["ticket_id"]]
    assert valid.column("enriched_at").to_pylist() == [stamp]
    assert valid.column("team").to_pylist() == ["Support Technique"]
    assert valid.column("kafka_offset").to_pylist() == [0]
    assert rejected.column("reason").to_pylist() == ["not JSON", "unknown type: bug"]
    assert bytes.fromhex(rejected.column("raw_value_hex")[0].as_py()) == b"{oops"


def test_aggregation_counts_only_valid_tickets(spark):
    """countable() drops every invalid record before counting."""
    rows = countable(verdicts(kafka_frame(spark, [with_(), *CORPUS])).toArrow()).to_pylist()
    assert [(r["ticket_id"], r["type"]) for r in rows] == [(VALID["ticket_id"], "incident")]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def hostile_records(draw) -> bytes | None:
    """Random bytes, random JSON, or a valid ticket with one field mutated or dropped."""
    kind = draw(st.sampled_from(["bytes", "json", "mutated"]))
    if kind == "bytes":
        return draw(st.none() | st.binary(max_size=64))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    field = draw(st.sampled_from(list(VALID)))
    value = draw(json_values | st.just(...))
    return with_(**{field: value})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(hostile_records(), min_size=1, max_size=25))
def test_spark_and_python_agree_on_any_hostile_record(spark, batch):
    """For generated hostile records, Spark's reason equals the Python twin's, valid or not."""
    rows = classify(kafka_frame(spark, batch)).orderBy("kafka_offset").collect()
    assert [r.reason for r in rows] == [reject_reason(v) for v in batch]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records(), min_size=1, max_size=40))
def test_spark_and_python_agree_on_records_at_the_contracts_edges(spark, batch):
    """Records aimed at the edges (tests/core/strategies.py): dates and offsets at their
    limits, every JSON escape, lone surrogates, NUL, blanks, lengths in characters and in
    bytes, nesting and numbers at Spark's parser's limits. Same verdict in both twins."""
    rows = classify(kafka_frame(spark, batch)).select("reason").orderBy("kafka_offset").collect()
    assert [r.reason for r in rows] == [reject_reason(v) for v in batch]


@pytest.mark.parametrize("value", [with_(), with_(created_at="2026-11-28T10:45:59.123Z")])
def test_created_at_is_stored_in_utc(spark, value):
    """An offset timestamp is parsed to the same UTC instant."""
    row = classify(kafka_frame(spark, [value])).collect()[0]
    assert row.reason is None
    assert row.created_at == datetime(2026, 11, 28, 10, 45, 59, 123000)
