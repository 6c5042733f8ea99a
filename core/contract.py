"""The ticket contract: the one definition of a ticket that every part derives from.

The producer builds tickets from it, the Spark jobs derive their validation
expressions from it (jobs/validation.py), and the SQL DDL is generated from it
(core/migrations.py). Change a field, an enum or a route here and only here.

A record is valid only if Python, Spark and PostgreSQL all read it the same way and
PostgreSQL can store every value of it. Where one of the three refuses or changes a
value, the contract decides, and both twins (decode_ticket here, jobs/validation.py
in Spark) reject it with the same reason (of REASONS) at the same step:

- The JSON text. Spark's parser (Jackson) refuses a text nested deeper than
  MAX_JSON_DEPTH, a number of more than MAX_NUMBER_DIGITS digits, or a field name of
  more than MAX_NAME_CHARS characters; Python's json would accept them (or raise
  RecursionError on deep nesting): the twin refuses them too (REASONS.not_json).
- Lone surrogates. A JSON escape such as \\ud800 that is not half of a pair is valid
  JSON, but no Unicode scalar value: Python keeps it (and cannot encode it to UTF-8),
  Spark 4.2's parser refuses the text (4.0 turned the escape into "?"). Any such escape
  in the record: REASONS.lone_surrogate, checked before the JSON parse.
- NUL. "\\u0000" is valid JSON, and Python and Spark keep it, but PostgreSQL's text
  cannot hold it: REASONS.nul_character, for every field.
- Formats (ticket_id, client_id, created_at) match the whole text: Java's "$" also
  matches before a final \\r, \\u2028 or \\u2029, Python's before a final \\n.
- Blank requests. Spark's trim() strips spaces only, Python's strip() every Unicode
  space: a request made only of BLANK_CHARACTERS (Python's str.isspace set, listed)
  is REASONS.empty_request.
- created_at. Its offset lies within +-18:00 with minutes below 60 (Java's limit;
  Python accepts up to 23:59 and minute 60), and the instant within CREATED_AT_RANGE,
  from 1900 to 9999-12-30 in UTC (Spark parses year 0, which Python and PostgreSQL
  refuse; Python cannot shift 9999-12-31 into a zone east of UTC, and PySpark's own
  conversion fails near year 1). Outside: REASONS.bad_timestamp.
- Reasons quote at most QUOTE_CHARS characters of the record, with every control
  character (C0, DEL, C1) as "?", so that a reason is short and always storable.

ticket_id is a lowercase canonical UUID, which PostgreSQL's uuid prints back as it
was received; text is UTF-8 end to end (the database encoding is checked by
core.postgres), and rows reach PostgreSQL by COPY in CSV, every string quoted.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "BLANK_CHARACTERS",
    "CREATED_AT_FORMAT_SPARK",
    "CREATED_AT_PATTERN",
    "CREATED_AT_RANGE",
    "DETAILED_REASON_LABELS",
    "ESCAPED_BACKSLASH",
    "FIELDS",
    "KAFKA_POSITION",
    "LINEAGE_COLUMNS",
    "LINEAGE_NAMES",
    "LONE_SURROGATE_ESCAPE",
    "MAX_JSON_DEPTH",
    "MAX_NAME_CHARS",
    "MAX_NUMBER_DIGITS",
    "MAX_RAW_BYTES",
    "PRODUCER_BATCH_BYTES",
    "QUOTE_CHARS",
    "QUOTE_UNSAFE",
    "RAW_PARTS",
    "RAW_PART_TYPES",
    "REASONS",
    "TABLES",
    "TOPIC",
    "TOPIC_CONFIG",
    "TOPIC_MAX_MESSAGE_BYTES",
    "TOPIC_TIMESTAMP_TYPE",
    "TYPE_TEAMS",
    "UUID_PATTERN",
    "WINNER_ORDER",
    "Field",
    "LineageColumn",
    "Priority",
    "Reason",
    "Reasons",
    "TicketType",
    "decode_ticket",
    "quote",
    "reason_label",
    "reject_reason",
    "team_for",
    "validate_ticket",
]

TOPIC = "client_tickets"


class TicketType(StrEnum):
    """What the customer wants; decides the team that handles the ticket."""

    INCIDENT = "incident"
    DEMANDE = "demande"
    QUESTION = "question"


class Priority(StrEnum):
    """How urgent the customer says the ticket is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Routing table: every ticket type goes to exactly one team.
TYPE_TEAMS: dict[TicketType, str] = {
    TicketType.INCIDENT: "Support Technique",
    TicketType.DEMANDE: "Customer Care",
    TicketType.QUESTION: "Support Information",
}

# Formats match the whole text (re.fullmatch here; \A...\z in Spark).
# A lowercase canonical UUID, as str(uuid.uuid4()) writes it.
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CLIENT_ID_PATTERN = r"CLI-[0-9]{6}"
# ISO-8601 with milliseconds and an offset: 2026-11-28T10:45:59.123+00:00 (or Z); the
# offset within +-18:00, as java.time.ZoneOffset allows.
CREATED_AT_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-7]):[0-5][0-9]|18:00))"
)
# The same format as a Spark datetime pattern; XXX accepts both Z and +hh:mm.
CREATED_AT_FORMAT_SPARK = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
# The instants a ticket may be created at. Python, Spark and PostgreSQL all hold them in
# every time zone (Python has no year 0 or 10000 to shift into), and none is before 1900,
# so no calendar rebasing (Spark's pre-1582 dates) and no local mean time apply.
CREATED_AT_RANGE = (
    datetime(1900, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
)
MAX_REQUEST_CHARS = 4000
# What a blank request may consist of: Python's str.isspace() characters, listed.
BLANK_CHARACTERS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Records larger than this are rejected before any parsing.
MAX_RAW_BYTES = 64 * 1024
# The topic's max.message.bytes: what one record batch, compressed, may weigh on the broker.
# Our producer's batches (PRODUCER_BATCH_BYTES before compression, lz4 adds at most 0.4% to
# incompressible data) fit; a single record larger than it is refused by the broker, and one
# larger than MAX_RAW_BYTES is a dead letter.
PRODUCER_BATCH_BYTES = 256 * 1024
TOPIC_MAX_MESSAGE_BYTES = PRODUCER_BATCH_BYTES + 8 * 1024
# The tickets topic's configuration. The broker stamps each record with the time it appended
# it (LogAppendTime), never the producer's claim: a copy of a ticket_id sent later, whatever
# timestamp its sender set, comes later in WINNER_ORDER and cannot replace the stored one.
TOPIC_TIMESTAMP_TYPE = ("message.timestamp.type", "LogAppendTime")
TOPIC_CONFIG: dict[str, str] = {
    "max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES),
    TOPIC_TIMESTAMP_TYPE[0]: TOPIC_TIMESTAMP_TYPE[1],
}
# The limits of Spark's JSON parser (Jackson's StreamReadConstraints, measured on Spark
# with the twins' agreement tests). Spark parses the record inside an array, one level
# more than the record's own: so a record may nest 999 levels.
MAX_JSON_DEPTH = 999
MAX_NUMBER_DIGITS = 1000
MAX_NAME_CHARS = 50_000
# A \uXXXX escape of a surrogate that is not half of a pair, in a text whose escaped
# backslashes (\\) were removed first, so that every \u left starts an escape.
ESCAPED_BACKSLASH = r"\\\\"
LONE_SURROGATE_ESCAPE = (
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
# A reason quotes at most this many characters of a record, each control character as "?".
QUOTE_CHARS = 40
QUOTE_UNSAFE = r"[\x00-\x1f\x7f-\x9f]"


@dataclass(frozen=True, slots=True)
class Field:
    """One JSON field of a ticket: all are required, non-null JSON strings."""

    name: str
    sql_type: str
    pattern: str | None = None
    allowed: tuple[str, ...] | None = None
    max_chars: int | None = None
    is_timestamp: bool = False


FIELDS: tuple[Field, ...] = (
    Field("ticket_id", "uuid", pattern=UUID_PATTERN),
    Field("client_id", "text", pattern=CLIENT_ID_PATTERN),
    Field("created_at", "timestamptz", is_timestamp=True),
    Field("request", "text", max_chars=MAX_REQUEST_CHARS),
    Field("type", "text", allowed=tuple(TicketType)),
    Field("priority", "text", allowed=tuple(Priority)),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


@dataclass(frozen=True, slots=True)
class LineageColumn:
    """Where a stored row came from in Kafka: one column of the tables that keep records."""

    name: str
    sql_type: str
    not_null: bool
    # The Kafka source's column (Spark's kafka source; a confluent Message's method).
    source: str


LINEAGE_COLUMNS: tuple[LineageColumn, ...] = (
    LineageColumn("kafka_topic", "text", not_null=True, source="topic"),
    LineageColumn("kafka_partition", "integer", not_null=True, source="partition"),
    LineageColumn("kafka_offset", "bigint", not_null=True, source="offset"),
    # A record may have no timestamp.
    LineageColumn("kafka_timestamp", "timestamptz", not_null=False, source="timestamp"),
)
LINEAGE_NAMES: tuple[str, ...] = tuple(c.name for c in LINEAGE_COLUMNS)
# A record's place in Kafka: the natural key of a rejected record.
KAFKA_POSITION: tuple[str, ...] = ("kafka_topic", "kafka_partition", "kafka_offset")
# Which copy of a ticket_id sent more than once both jobs keep, whatever their
# micro-batch boundaries: the earliest Kafka timestamp, then partition, then offset. On a
# topic of TOPIC_CONFIG the timestamp is the broker's: the first copy appended wins.
WINNER_ORDER: tuple[str, ...] = ("kafka_timestamp", "kafka_partition", "kafka_offset")
# What a dead letter keeps of each raw part of its record (key, value), as the jobs hand it
# to the sink: <part>_hex (a preview), <part>_bytes (the whole size), <part>_sha256 (hex).
RAW_PARTS: tuple[str, ...] = ("raw_key", "raw_value")
RAW_PART_TYPES: dict[str, str] = {"hex": "text", "bytes": "integer", "sha256": "text"}


@dataclass(frozen=True, slots=True)
class Reason:
    """One kind of reject reason. Its template names a contract field as {field} and what
    the record holds as {detail} (a size, a quoted text): the twins fill them alike."""

    template: str

    @property
    def has_detail(self) -> bool:
        return "{detail}" in self.template

    def text(self, field: str = "", detail: object = "") -> str:
        """The reason, for `field` and with `detail` (the Python twin's)."""
        return self.template.format(field=field, detail=detail)

    def around_detail(self, field: str = "") -> tuple[str, str]:
        """The text before and after the detail, for `field` (the Spark twin's)."""
        before, _, after = self.template.partition("{detail}")
        return before.format(field=field), after.format(field=field)

    def labels(self) -> tuple[str, ...]:
        """What a metrics label keeps of a reason with a detail: the text before its ": "."""
        head = self.template.partition(": ")[0]
        return tuple(dict.fromkeys(head.format(field=f.name) for f in FIELDS))


@dataclass(frozen=True, slots=True)
class Reasons:
    """Every reject reason, in the order the twins check them."""

    tombstone: Reason = Reason("null value (tombstone)")
    empty: Reason = Reason("empty value")
    too_large: Reason = Reason("record too large: {detail} bytes")
    invalid_utf8: Reason = Reason("invalid UTF-8")
    lone_surrogate: Reason = Reason("lone surrogate escape")
    not_json: Reason = Reason("not JSON")
    not_object: Reason = Reason("not a JSON object")
    missing_field: Reason = Reason("missing field: {field}")
    unexpected_field: Reason = Reason("unexpected field: {detail}")
    null_field: Reason = Reason("null field: {field}")
    wrong_type: Reason = Reason("wrong type for {field}: expected string")
    nul_character: Reason = Reason("NUL character in {field}")
    too_long: Reason = Reason("{field} too long")
    empty_request: Reason = Reason("empty request")
    unknown_value: Reason = Reason("unknown {field}: {detail}")
    bad_timestamp: Reason = Reason("bad timestamp: {field}")
    bad_format: Reason = Reason("bad format: {field}")

    def __iter__(self) -> Iterator[Reason]:
        return (getattr(self, f.name) for f in fields(self))


REASONS = Reasons()


@dataclass(frozen=True, slots=True)
class Tables:
    """The PostgreSQL tables the pipeline writes."""

    tickets: str = "tickets"
    rejected: str = "tickets_rejected"
    aggregation: str = "tickets_aggregation"
    # Ticket ids the aggregation has counted, so a ticket counts once whatever replays.
    aggregation_seen: str = "tickets_aggregation_seen"
    # What the executors stage of a micro-batch until the driver commits it (jobs.staged_sink).
    tickets_staged: str = "tickets_staged"
    aggregation_staged: str = "tickets_aggregation_staged"
    # The last micro-batch each streaming query committed, so a replayed one changes nothing.
    sink_commits: str = "sink_commits"


TABLES = Tables()


def team_for(ticket_type: str) -> str:
    """Return the team that handles a ticket type; KeyError for an unknown type."""
    return TYPE_TEAMS[TicketType(ticket_type)]


def decode_ticket(raw: bytes | None) -> tuple[dict | None, str | None]:
    """(ticket, None) for a valid raw Kafka value, else (None, why it is not a valid ticket).

    The pure-Python twin of the Spark validation (jobs/validation.py): same checks,
    same order, same reasons; tests/jobs/test_validation.py checks that they agree.
    It never raises, whatever the bytes.
    """
    if raw is None:
        return None, REASONS.tombstone.text()
    if len(raw) == 0:
        return None, REASONS.empty.text()
    if len(raw) > MAX_RAW_BYTES:
        return None, REASONS.too_large.text(detail=len(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, REASONS.invalid_utf8.text()
    if _has_lone_surrogate(text):
        return None, REASONS.lone_surrogate.text()
    ticket = _parse_json(text)
    if ticket is _NOT_JSON:
        return None, REASONS.not_json.text()
    reason = validate_ticket(ticket)
    return (None, reason) if reason else (ticket, None)


def quote(value: str, chars: int = QUOTE_CHARS) -> str:
    """What a reason quotes of a text: its first `chars` characters, controls as "?"."""
    return re.sub(QUOTE_UNSAFE, "?", value[:chars])


def _has_lone_surrogate(text: str) -> bool:
    """Whether a JSON text escapes a surrogate that is not half of a pair (\\ud800)."""
    if "\\u" not in text:
        return False
    return re.search(LONE_SURROGATE_ESCAPE, re.sub(ESCAPED_BACKSLASH, "", text)) is not None


_NOT_JSON = object()


def _parse_json(text: str) -> object:
    """The JSON value of `text`, or _NOT_JSON where Python's or Spark's parser refuses it."""
    opened = text.count("[") + text.count("{")
    if opened > MAX_JSON_DEPTH and _nesting_depth(text) > MAX_JSON_DEPTH:
        return _NOT_JSON
    try:
        with _recursion_room(opened):
            return json.loads(
                text,
                object_pairs_hook=_object,
                parse_constant=_no_constant,
                parse_int=_integer,
                parse_float=_decimal,
            )
    except ValueError:
        return _NOT_JSON


def _nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@contextmanager
def _recursion_room(levels: int):
    """Room on Python's stack for json's recursive parser, as deep as Spark's allows."""
    limit = sys.getrecursionlimit()
    if levels > limit // 2:
        sys.setrecursionlimit(limit + levels + 100)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def _object(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    if any(len(k) > MAX_NAME_CHARS for k in keys):
        raise ValueError("field name too long")
    return dict(pairs)


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError("number too long")
    return int(digits)


def _decimal(literal: str) -> float:
    """A number with a fraction or an exponent; Jackson counts the digits of its integer part
    (none for a lone 0), fraction and exponent together."""
    mantissa, _, exponent = literal.lstrip("-").lower().partition("e")
    integer, _, fraction = mantissa.partition(".")
    digits = (0 if integer == "0" else len(integer)) + len(fraction) + len(exponent.lstrip("+-"))
    if digits > MAX_NUMBER_DIGITS:
        raise ValueError("number too long")
    return float(literal)


def reject_reason(raw: bytes | None) -> str | None:
    """Why a raw Kafka value is not a valid ticket, or None when it is (see decode_ticket)."""
    return decode_ticket(raw)[1]


# The labels of the reasons that carry a free-form detail after ": " (a size, a field name, a
# value): reason_label cuts such a reason there (the dashboard does the same in SQL).
DETAILED_REASON_LABELS: tuple[str, ...] = tuple(
    sorted({label for r in REASONS if r.has_detail for label in r.labels()})
)


def reason_label(reason: str) -> str:
    """A reject reason without its free-form detail, for a bounded metrics label:
    "unknown type: bug" -> "unknown type"; a reason naming one of FIELDS is kept whole."""
    head = reason.split(": ", 1)[0]
    return head if head in DETAILED_REASON_LABELS else reason


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def validate_ticket(ticket: object) -> str | None:
    """Return why a decoded JSON value is not a valid ticket, or None when it is.

    Checks run in the order of `FIELDS`: all missing fields first, then unknown
    fields, then each field's null, type, enum, length and format rules.
    """
    if not isinstance(ticket, dict):
        return REASONS.not_object.text()
    for field in FIELDS:
        if field.name not in ticket:
            return REASONS.missing_field.text(field.name)
    extra = sorted(set(ticket) - set(FIELD_NAMES))
    if extra:
        return REASONS.unexpected_field.text(detail=quote(extra[0]))
    for field in FIELDS:
        reason = _field_error(field, ticket[field.name])
        if reason:
            return reason
    return None


def _field_error(field: Field, value: object) -> str | None:
    if value is None:
        return REASONS.null_field.text(field.name)
    if not isinstance(value, str):
        return REASONS.wrong_type.text(field.name)
    if "\x00" in value:
        return REASONS.nul_character.text(field.name)
    if field.max_chars is not None and len(value) > field.max_chars:
        return REASONS.too_long.text(field.name)
    if field.name == "request" and not value.strip(BLANK_CHARACTERS):
        return REASONS.empty_request.text()
    if field.allowed is not None and value not in field.allowed:
        return REASONS.unknown_value.text(field.name, quote(value))
    if field.is_timestamp and not _is_timestamp(value):
        return REASONS.bad_timestamp.text(field.name)
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        return REASONS.bad_format.text(field.name)
    return None


def _is_timestamp(value: str) -> bool:
    if not re.fullmatch(CREATED_AT_PATTERN, value):
        return False
    try:
        instant = datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return False
    return CREATED_AT_RANGE[0] <= instant <= CREATED_AT_RANGE[1]
