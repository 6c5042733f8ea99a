"""The ticket contract: enums, routing and the pure-Python validation."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.contract import (
    FIELD_NAMES,
    MAX_JSON_DEPTH,
    MAX_RAW_BYTES,
    REASONS,
    TYPE_TEAMS,
    Priority,
    TicketType,
    reason_label,
    reject_reason,
    team_for,
    validate_ticket,
)
from producer.generator import TicketGenerator, encode
from tests.core.strategies import EDGE_RECORDS, VALID, VALID_EDGES, records, with_

__all__ = ["VALID", "with_"]


def test_every_ticket_type_routes_to_its_team():
    """incident → Support Technique, demande → Customer Care, question → Support Information."""
    assert team_for("incident") == "Support Technique"
    assert team_for("demande") == "Customer Care"
    assert team_for("question") == "Support Information"
    assert set(TYPE_TEAMS) == set(TicketType)


def test_the_contract_has_the_six_fields_and_enums_of_the_spec():
    """The fields and enum values are exactly those the product promises."""
    assert FIELD_NAMES == ("ticket_id", "client_id", "created_at", "request", "type", "priority")
    assert [t.value for t in TicketType] == ["incident", "demande", "question"]
    assert [p.value for p in Priority] == ["low", "medium", "high"]


def test_an_unknown_type_has_no_team():
    """Routing refuses a type outside the contract instead of guessing."""
    with pytest.raises(ValueError):
        team_for("bug")


def test_a_valid_ticket_has_no_reject_reason():
    """A ticket that follows the contract is accepted, with Z or +00:00 offsets."""
    assert reject_reason(with_()) is None
    assert reject_reason(with_(created_at="2026-11-28T10:45:59.123Z")) is None


BAD_RECORDS: list[tuple[bytes | None, str]] = [
    (None, "null value (tombstone)"),
    (b"", "empty value"),
    (b"x" * (MAX_RAW_BYTES + 1), f"record too large: {MAX_RAW_BYTES + 1} bytes"),
    (b'{"ticket_id": "\xff"}', "invalid UTF-8"),
    (b'{"ticket_id": ', "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (with_(type=...), "missing field: type"),
    (with_(channel="email"), "unexpected field: channel"),
    (with_(priority=None), "null field: priority"),
    (with_(ticket_id=42), "wrong type for ticket_id: expected string"),
    (with_(type="bug"), "unknown type: bug"),
    (with_(priority="urgent"), "unknown priority: urgent"),
    (with_(created_at="2026-02-30T10:00:00.000Z"), "bad timestamp: created_at"),
    (with_(created_at="2026-11-28 10:45:59"), "bad timestamp: created_at"),
    (with_(request="   "), "empty request"),
    (with_(request="é" * 4001), "request too long"),
    (with_(client_id="client-1"), "bad format: client_id"),
    (with_(ticket_id="not-a-uuid"), "bad format: ticket_id"),
    (b'{"a": 1, "a": 2}', "not JSON"),
    (with_() + b" {}", "not JSON"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD_RECORDS)
def test_each_kind_of_bad_record_gets_its_own_reason(raw, reason):
    """Every invalid record is rejected with a reason that says what is wrong."""
    assert reject_reason(raw) == reason


def test_every_reason_of_the_contracts_table_is_given_to_some_record():
    """Each of REASONS, filled with a field name and any detail, is the reason of a bad
    record above or of an edge record: the table holds no reason that no check gives."""
    given = [reject_reason(raw) or "" for raw, _ in [*BAD_RECORDS, *EDGE_RECORDS.values()]]
    fields = "|".join(map(re.escape, FIELD_NAMES))
    for reason in REASONS:
        pattern = (
            re.escape(reason.template).replace(r"\{field\}", f"(?:{fields})").replace(r"\{detail\}", ".+")
        )
        assert any(re.fullmatch(pattern, g) for g in given), reason.template


def test_generated_tickets_follow_the_contract():
    """The producer's generator only ever writes valid tickets."""
    generator = TicketGenerator(seed=7)
    for _ in range(2000):
        ticket = generator.ticket()
        assert validate_ticket(ticket) is None
        assert reject_reason(encode(ticket)) is None


def test_reason_labels_drop_free_form_details_and_keep_field_names():
    """A metrics label per reason kind: sizes, unknown field names and values are dropped,
    so the labels stay few whatever the records; a reason naming a contract field stays."""
    assert reason_label("unknown type: bug") == "unknown type"
    assert reason_label("unknown priority: " + "x" * 40) == "unknown priority"
    assert reason_label("record too large: 70000 bytes") == "record too large"
    assert reason_label("unexpected field: zzz") == "unexpected field"
    assert reason_label("missing field: client_id") == "missing field: client_id"
    assert reason_label("bad format: ticket_id") == "bad format: ticket_id"
    assert reason_label("not JSON") == "not JSON"


@given(
    changes=st.dictionaries(
        st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12)),
        st.one_of(st.none(), st.integers(), st.text(max_size=60)),
        max_size=3,
    )
)
def test_any_spoiled_ticket_gets_a_label_that_names_nothing_but_the_contract(changes):
    """Whatever a field holds or a record adds, the label's detail is a field name at most
    ("wrong type for X: expected string" names the field before its colon)."""
    reason = reject_reason(json.dumps({**VALID, **changes}).encode())
    if reason is not None:
        detail = reason_label(reason).partition(": ")[2]
        assert detail in ("", "expected string", *FIELD_NAMES), reason


@pytest.mark.parametrize("name", list(EDGE_RECORDS))
def test_each_value_that_one_part_read_differently_is_decided_by_the_contract(name):
    """Year 0, offsets past 18:00, a format followed by \\r, NUL, blank requests, lone
    surrogates, unsafe quotes, nesting and numbers beyond Spark's parser: each is rejected."""
    raw, reason = EDGE_RECORDS[name]
    assert reject_reason(raw) == reason


@pytest.mark.parametrize("name", list(VALID_EDGES))
def test_values_at_the_edges_that_every_part_reads_alike_stay_valid(name):
    """The first and last instants, offsets of +-18:00, 4,000 four-byte characters, every
    JSON escape, control characters and COPY's end marker are valid."""
    assert reject_reason(VALID_EDGES[name]) is None


@settings(max_examples=300, deadline=None)
@given(raw=records())
def test_the_python_twin_never_raises(raw):
    """Whatever the bytes, deep nesting and huge numbers included, there is a verdict, and a
    reason is short and free of control characters."""
    reason = reject_reason(raw)
    if reason is not None:
        assert len(reason) <= 80
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in reason)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 30_000])
def test_nesting_is_judged_as_sparks_parser_judges_it(depth):
    """Up to MAX_JSON_DEPTH levels a record is JSON; deeper, it is not, as in Spark."""
    reason = reject_reason(b"[" * depth + b"]" * depth)
    assert reason == ("not a JSON object" if depth <= MAX_JSON_DEPTH else "not JSON")
