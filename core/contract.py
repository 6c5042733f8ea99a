"""The ticket contract: the one definition of a ticket that every part derives from.

The producer builds tickets from it, the Spark jobs derive their validation
expressions from it (jobs/validation.py), and the SQL DDL is generated from it
(core/migrations.py). Change a field, an enum or a route here and only here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CREATED_AT_FORMAT_SPARK",
    "CREATED_AT_PATTERN",
    "FIELDS",
    "MAX_RAW_BYTES",
    "TABLES",
    "TOPIC",
    "TYPE_TEAMS",
    "UUID_PATTERN",
    "Field",
    "Priority",
    "TicketType",
    "decode_ticket",
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

# A lowercase canonical UUID, as str(uuid.uuid4()) writes it.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CLIENT_ID_PATTERN = r"^CLI-[0-9]{6}$"
# UTC ISO-8601 with milliseconds and an offset: 2026-11-28T10:45:59.123+00:00 (or Z).
CREATED_AT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# The same format as a Spark datetime pattern; XXX accepts both Z and +hh:mm.
CREATED_AT_FORMAT_SPARK = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
MAX_REQUEST_CHARS = 4000
# Records larger than this are rejected before any parsing.
MAX_RAW_BYTES = 64 * 1024


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
class Tables:
    """The PostgreSQL tables the pipeline writes."""

    tickets: str = "tickets"
    rejected: str = "tickets_rejected"
    aggregation: str = "tickets_aggregation"
    # Ticket ids the aggregation has counted, so a ticket counts once whatever replays.
    aggregation_seen: str = "tickets_aggregation_seen"


TABLES = Tables()


def team_for(ticket_type: str) -> str:
    """Return the team that handles a ticket type; KeyError for an unknown type."""
    return TYPE_TEAMS[TicketType(ticket_type)]


def decode_ticket(raw: bytes | None) -> tuple[dict | None, str | None]:
    """(ticket, None) for a valid raw Kafka value, else (None, why it is not a valid ticket).

    The pure-Python twin of the Spark validation (jobs/validation.py): same checks,
    same order, same reasons; tests/jobs/test_validation.py checks that they agree.
    """
    if raw is None:
        return None, "null value (tombstone)"
    if len(raw) == 0:
        return None, "empty value"
    if len(raw) > MAX_RAW_BYTES:
        return None, f"record too large: {len(raw)} bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid UTF-8"
    try:
        ticket = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except ValueError:
        return None, "not JSON"
    reason = validate_ticket(ticket)
    return (None, reason) if reason else (ticket, None)


def reject_reason(raw: bytes | None) -> str | None:
    """Why a raw Kafka value is not a valid ticket, or None when it is (see decode_ticket)."""
    return decode_ticket(raw)[1]


# Reasons that carry a free-form detail after ": " (a size, a field name, a value).
_DETAILED_REASONS = ("record too large", "unexpected field", *(f"unknown {f.name}" for f in FIELDS))


def reason_label(reason: str) -> str:
    """A reject reason without its free-form detail, for a bounded metrics label:
    "unknown type: bug" -> "unknown type"; a reason naming one of FIELDS is kept whole."""
    head = reason.split(": ", 1)[0]
    return head if head in _DETAILED_REASONS else reason


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def validate_ticket(ticket: object) -> str | None:
    """Return why a decoded JSON value is not a valid ticket, or None when it is.

    Checks run in the order of `FIELDS`: all missing fields first, then unknown
    fields, then each field's null, type, enum, length and format rules.
    """
    if not isinstance(ticket, dict):
        return "not a JSON object"
    for field in FIELDS:
        if field.name not in ticket:
            return f"missing field: {field.name}"
    extra = sorted(set(ticket) - set(FIELD_NAMES))
    if extra:
        return f"unexpected field: {extra[0]}"
    for field in FIELDS:
        reason = _field_error(field, ticket[field.name])
        if reason:
            return reason
    return None


def _field_error(field: Field, value: object) -> str | None:
    if value is None:
        return f"null field: {field.name}"
    if not isinstance(value, str):
        return f"wrong type for {field.name}: expected string"
    if field.max_chars is not None and len(value) > field.max_chars:
        return f"{field.name} too long"
    if field.name == "request" and not value.strip():
        return "empty request"
    if field.allowed is not None and value not in field.allowed:
        return f"unknown {field.name}: {value[:40]}"
    if field.is_timestamp and not _is_timestamp(value):
        return f"bad timestamp: {field.name}"
    if field.pattern is not None and not re.search(field.pattern, value):
        return f"bad format: {field.name}"
    return None


def _is_timestamp(value: str) -> bool:
    if not re.search(CREATED_AT_PATTERN, value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
