"""The enrichment of the Python contenders: a raw Kafka record to the row `tickets` stores.

The Python twin of the enrichment job's projection: core.contract's validation
(decode_ticket), the ticket's team (team_for) and the record's lineage, stamped with the
time it was enriched. The plain consumer and the quix-streams contender share it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.contract import decode_ticket, team_for

__all__ = ["stored_row"]


def stored_row(
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    enriched_at: datetime,
) -> dict | None:
    """The columns of `tickets` (jobs.enrichment.STORED_COLUMNS) for a raw Kafka value, or
    None when it is no valid ticket (the bench's data is all valid; the jobs would store a
    reject in tickets_rejected)."""
    ticket, _reason = decode_ticket(value)
    if ticket is None:
        return None
    ticket["team"] = team_for(ticket["type"])
    ticket["kafka_topic"] = topic
    ticket["kafka_partition"] = partition
    ticket["kafka_offset"] = offset
    ticket["kafka_timestamp"] = (
        None if timestamp_ms is None else datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    )
    ticket["enriched_at"] = enriched_at
    return ticket
