"""Hypothesis strategies for raw Kafka values, aimed at the edges of the ticket contract.

They live beside the contract's tests so that every change to the contract is fuzzed the
same way: the twins' agreement (tests/jobs/test_validation.py), the Python twin that never
raises (tests/core/test_contract.py) and the real sink (tests/jobs/test_storable.py).

`EDGE_RECORDS` names each value that Python, Spark or PostgreSQL read differently before
the contract decided it, with the reason the contract now gives it.
"""

from __future__ import annotations

import json
from datetime import datetime

from hypothesis import strategies as st

from core.contract import (
    BLANK_CHARACTERS,
    FIELD_NAMES,
    MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_RAW_BYTES,
    MAX_REQUEST_CHARS,
    Priority,
    TicketType,
)

VALID = {
    "ticket_id": "6f1c2b0e-3d4a-4b5c-8d9e-0f1a2b3c4d5e",
    "client_id": "CLI-004217",
    "created_at": "2026-11-28T10:45:59.123+00:00",
    "request": "Bonjour, l'application mobile affiche une erreur 500 depuis ce matin.",
    "type": "incident",
    "priority": "high",
}


def with_(**changes) -> bytes:
    """VALID with fields changed (`...` drops one), as JSON bytes."""
    ticket = {**VALID, **changes}
    return json.dumps({k: v for k, v in ticket.items() if v is not ...}).encode()


def with_source(field: str, source: str) -> bytes:
    """VALID with one field's JSON source text given as it is (escapes kept)."""
    members = [json.dumps(k) + ":" + (source if k == field else json.dumps(v)) for k, v in VALID.items()]
    return ("{" + ",".join(members) + "}").encode()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Each value that one of Python, Spark or PostgreSQL refused or changed, and its reason now.
EDGE_RECORDS: dict[str, tuple[bytes, str]] = {
    "the instant before 1900": (with_(created_at="1899-12-31T23:59:59.999Z"), "bad timestamp: created_at"),
    "the last day of 9999, which is year 10000 east of UTC": (
        with_(created_at="9999-12-31T00:00:00.000Z"),
        "bad timestamp: created_at",
    ),
    "year 0 (Spark parsed it, PostgreSQL refused it)": (
        with_(created_at="0000-01-01T00:00:00.000Z"),
        "bad timestamp: created_at",
    ),
    "year 1 at +01:00, which is year 0 in UTC": (
        with_(created_at="0001-01-01T00:00:00.000+01:00"),
        "bad timestamp: created_at",
    ),
    "year 9999 at -01:00, which is year 10000 in UTC": (
        with_(created_at="9999-12-31T23:30:00.000-01:00"),
        "bad timestamp: created_at",
    ),
    "an offset of +19:00 (Python took it, Spark did not)": (
        with_(created_at="2026-06-30T10:00:00.000+19:00"),
        "bad timestamp: created_at",
    ),
    "an offset minute of 60 (Python took it, Spark did not)": (
        with_(created_at="2026-06-30T10:00:00.000+00:60"),
        "bad timestamp: created_at",
    ),
    "a ticket_id ending in \\r (Java's $ matched before it)": (
        with_(ticket_id=VALID["ticket_id"] + "\r"),
        "bad format: ticket_id",
    ),
    "a ticket_id ending in \\u2028 (Java's $ matched before it)": (
        with_(ticket_id=VALID["ticket_id"] + "\u2028"),
        "bad format: ticket_id",
    ),
    "a ticket_id ending in \\n (both $ matched before it, uuid refused it)": (
        with_(ticket_id=VALID["ticket_id"] + "\n"),
        "bad format: ticket_id",
    ),
    "a client_id ending in \\n (both $ matched before it)": (
        with_(client_id=VALID["client_id"] + "\n"),
        "bad format: client_id",
    ),
    "NUL in the request (PostgreSQL's text cannot hold it)": (
        with_(request="avant\u0000après"),
        "NUL character in request",
    ),
    "NUL in the type, which the reason would have quoted": (
        with_(type="inci\u0000dent"),
        "NUL character in type",
    ),
    "a request of a tab (Spark's trim kept it, Python's strip did not)": (
        with_(request="\t"),
        "empty request",
    ),
    "a request of no-break spaces": (with_(request="\u00a0\u3000"), "empty request"),
    "a lone high surrogate escape (Spark stored ?, Python could not encode it)": (
        with_source("request", '"a\\ud800b"'),
        "lone surrogate escape",
    ),
    "a lone low surrogate escape after an escaped backslash": (
        with_source("request", '"\\\\ud83d\\ude00"'),
        "lone surrogate escape",
    ),
    "a field name with NUL, which the reason would have quoted": (
        with_(**{"\u0000x": 1}),
        "unexpected field: ?x",
    ),
    "an unknown type with an escape character, quoted as ?": (
        with_(type="\u001b[31mrouge"),
        "unknown type: ?[31mrouge",
    ),
    "nesting one level deeper than Spark parses (Python raised RecursionError)": (
        _nested(MAX_JSON_DEPTH + 1),
        "not JSON",
    ),
    "an integer one digit longer than Spark parses": (
        b'{"n":' + b"7" * (MAX_NUMBER_DIGITS + 1) + b"}",
        "not JSON",
    ),
}

_EVERY_ESCAPE = '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"'
# Values at the edges that every part reads the same way: they stay valid.
VALID_EDGES: dict[str, bytes] = {
    "the earliest instant": with_(created_at="1900-01-01T00:00:00.000Z"),
    "the latest instant": with_(created_at="9999-12-30T23:59:59.999Z"),
    "the latest instant, written at -18:00": with_(created_at="9999-12-30T05:59:59.999-18:00"),
    "an offset of +18:00": with_(created_at="2026-06-30T10:00:00.000+18:00"),
    "an offset of -18:00": with_(created_at="2026-06-30T10:00:00.000-18:00"),
    "a request of the longest length in 4-byte characters": with_(request="😀" * MAX_REQUEST_CHARS),
    "a request of every JSON escape": with_source("request", _EVERY_ESCAPE),
    "a request of control characters": with_(request="x" + "".join(map(chr, range(1, 32))) + "\x7f\x85"),
    "a request quoting COPY's end marker": with_(request="ligne\n\\.\nsuite"),
}

_ID = VALID["ticket_id"]
# Each valid edge under its own ticket_id, so that every one of them is stored.
VALID_EDGES = {
    name: raw.replace(VALID["ticket_id"].encode(), f"00000000-0000-4000-8000-{n:012d}".encode())
    for n, (name, raw) in enumerate(VALID_EDGES.items())
}

_ENUMS = {"type": [t.value for t in TicketType], "priority": [p.value for p in Priority]}

# Text that reaches every corner: controls, NUL, blanks, non-BMP, CSV's and COPY's specials.
edge_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([*BLANK_CHARACTERS, "\x00", "\x7f", '"', "\\", ",", "\n", "\r", ".", "😀"]),
    ),
    max_size=30,
)

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@st.composite
def json_string(draw, text: str | None = None, lone_surrogates: bool = False) -> str:
    """The JSON source of a string, each character written raw or escaped in one of the ways
    JSON allows (\\uXXXX, a surrogate pair, a short escape, \\/), now and then a lone surrogate."""
    text = draw(edge_text) if text is None else text
    parts = []
    for char in text:
        how = draw(st.sampled_from(["raw", "raw", "u", "short"]))
        if (char < " " and how == "raw") or char in '"\\':
            how = "short" if char in _SHORT_ESCAPES else "u"
        if how == "short" and char in _SHORT_ESCAPES:
            parts.append(_SHORT_ESCAPES[char])
        elif how == "short" and char == "/":
            parts.append("\\/")
        elif how in ("u", "short"):
            parts.append(json.dumps(char)[1:-1] if ord(char) > 0x7F else f"\\u{ord(char):04x}")
        else:
            parts.append(char)
    if lone_surrogates and draw(st.booleans()):
        lone = draw(st.sampled_from(["\\ud800", "\\udfff", "\\uDBFF"]))
        parts.insert(draw(st.integers(0, len(parts))), lone)
    return '"' + "".join(parts) + '"'


_timestamps = st.builds(
    lambda year, month, day, hour, minute, second, offset: (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.123{offset}"
    ),
    st.sampled_from([0, 1, 1582, 1899, 1900, 1970, 2026, 9999]) | st.integers(0, 9999),
    st.integers(0, 13),
    st.sampled_from([0, 1, 28, 29, 30, 31, 32]),
    st.sampled_from([0, 23, 24]),
    st.sampled_from([0, 59, 60]),
    st.sampled_from([0, 59, 60]),
    st.sampled_from(
        ["Z", "+00:00", "-00:00", "+01:00", "-01:00", "+14:00", "+17:59", "+18:00", "-18:00", "+18:01",
         "+19:00", "+23:59", "+00:60", "z", ""]
    ),
)  # fmt: skip


_valid_values = {
    "ticket_id": st.uuids().map(str),
    "client_id": st.integers(0, 999_999).map(lambda n: f"CLI-{n:06d}"),
    "created_at": st.builds(
        lambda t, offset: f"{t:%Y}".zfill(4) + f"-{t:%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}{offset}",
        st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 29)),
        st.sampled_from(["Z", "+00:00", "-00:00", "+02:00", "-09:30", "+18:00", "-18:00"]),
    ),
    "request": edge_text.map(lambda text: text.replace("\x00", "") + "x"),
    "type": st.sampled_from(_ENUMS["type"]),
    "priority": st.sampled_from(_ENUMS["priority"]),
}


@st.composite
def field_source(draw, name: str) -> str:
    """The JSON source of one field's value: valid, at an edge, or of the wrong kind."""
    kind = draw(st.sampled_from(["valid", "edge", "edge", "text", "other"]))
    if kind == "valid":
        return draw(json_string(draw(_valid_values[name])))
    if kind == "edge":
        edges = {
            "ticket_id": st.sampled_from(
                [VALID["ticket_id"] + s for s in ["\n", "\r", "\u2028", "\u0085", " ", "\x00"]]
                + [_ID.upper(), "{" + _ID + "}", _ID.replace("-", ""), "00000000-0000-0000-0000-000000000000"]
            ),
            "client_id": st.sampled_from(["CLI-000000\n", "CLI-00000\u0661", "cli-000001", "CLI-9999999"]),
            "created_at": _timestamps,
            "request": st.sampled_from(
                ["x" * MAX_REQUEST_CHARS, "x" * (MAX_REQUEST_CHARS + 1), "😀" * MAX_REQUEST_CHARS,
                 "é" * (MAX_REQUEST_CHARS + 1), BLANK_CHARACTERS, "\\.", "\n\\.\n", '","', ""]
            ),
            "type": st.sampled_from([*_ENUMS["type"], "Incident", "incident\n", "x" * 100]),
            "priority": st.sampled_from([*_ENUMS["priority"], "HIGH", "high "]),
        }  # fmt: skip
        return draw(json_string(draw(edges[name])))
    if kind == "text":
        return draw(json_string(lone_surrogates=True))
    return draw(st.sampled_from(["null", "0", "-0.0", "1e999", "true", "[]", "{}", '["a"]']))


@st.composite
def records(draw) -> bytes | None:
    """A raw Kafka value: mostly a ticket with some fields at their edges, sometimes with a
    field dropped or added, sometimes raw bytes, deep nesting, long numbers or a huge record."""
    kind = draw(st.sampled_from(["ticket"] * 6 + ["bytes", "nested", "number", "large"]))
    if kind == "bytes":
        return draw(st.none() | st.binary(max_size=64))
    if kind == "nested":
        depth = draw(st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1]))
        inner = draw(st.sampled_from(["", '{"a":1}', '"\\u0000"']))
        return ("[" * depth + inner + "]" * depth).encode()
    if kind == "number":
        digits = draw(st.sampled_from([MAX_NUMBER_DIGITS - 1, MAX_NUMBER_DIGITS, MAX_NUMBER_DIGITS + 1]))
        shape = draw(st.sampled_from(["{n}", "-{n}", "{n}.5", "0.{n}", "1e{n}"]))
        return ('{"n":' + shape.replace("{n}", "7" * digits) + "}").encode()
    if kind == "large":
        size = draw(st.sampled_from([MAX_RAW_BYTES - 1, MAX_RAW_BYTES, MAX_RAW_BYTES + 1]))
        ticket = {k: v for k, v in VALID.items() if k != "request"}
        empty = len(json.dumps({**ticket, "request": ""}).encode())
        return json.dumps({**ticket, "request": "x" * (size - empty)}).encode()
    spoiled = draw(st.sets(st.sampled_from(FIELD_NAMES), max_size=2))
    members = {
        name: draw(field_source(name) if name in spoiled else json_string(draw(_valid_values[name])))
        for name in FIELD_NAMES
    }
    if draw(st.integers(0, 5)) == 0:
        members.pop(draw(st.sampled_from(FIELD_NAMES)))
    if draw(st.integers(0, 5)) == 0:
        members[draw(st.text(max_size=8))] = draw(field_source("request"))
    order = draw(st.permutations(list(members)))
    return ("{" + ",".join(json.dumps(k) + ":" + members[k] for k in order) + "}").encode()
