"""Random but realistic tickets, built from the contract and the French texts."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

from core.contract import Priority, TicketType
from producer.texts import SLOTS, TEMPLATES

__all__ = ["TicketGenerator", "encode"]

# Incidents are the most common ticket, questions the least.
_TYPE_WEIGHTS = {TicketType.INCIDENT: 5, TicketType.DEMANDE: 3, TicketType.QUESTION: 2}
_PRIORITY_WEIGHTS = {Priority.LOW: 3, Priority.MEDIUM: 5, Priority.HIGH: 2}


class TicketGenerator:
    """Generates tickets for a bounded population of clients, so that clients recur.

    `seed` makes the sequence of clients, types, priorities and texts reproducible;
    ticket ids stay random UUID4s, so several generators never collide.
    """

    def __init__(self, clients: int = 5000, seed: int | None = None) -> None:
        if clients < 1:
            raise ValueError("clients must be >= 1")
        self._random = random.Random(seed)
        self._client_ids = [f"CLI-{n:06d}" for n in range(1, clients + 1)]
        self._types = list(_TYPE_WEIGHTS)
        self._type_weights = list(_TYPE_WEIGHTS.values())
        self._priorities = list(_PRIORITY_WEIGHTS)
        self._priority_weights = list(_PRIORITY_WEIGHTS.values())

    def ticket(self, now: datetime | None = None) -> dict[str, str]:
        """One ticket as a JSON-ready dict; created_at is now (UTC, milliseconds)."""
        rnd = self._random
        ticket_type = rnd.choices(self._types, self._type_weights)[0]
        created_at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
        return {
            "ticket_id": str(uuid.uuid4()),
            "client_id": rnd.choice(self._client_ids),
            "created_at": created_at,
            "request": self._request(ticket_type),
            "type": ticket_type.value,
            "priority": rnd.choices(self._priorities, self._priority_weights)[0].value,
        }

    def _request(self, ticket_type: TicketType) -> str:
        template = self._random.choice(TEMPLATES[ticket_type])
        values = {slot: self._random.choice(words) for slot, words in SLOTS.items()}
        values["objet"] = values["objet"].format(numero=self._random.randint(10000, 99999))
        text = template.format(**values).strip()
        return text[0].upper() + text[1:]


def encode(ticket: dict[str, str]) -> bytes:
    """The ticket as the UTF-8 JSON value written to Kafka."""
    return json.dumps(ticket, ensure_ascii=False, separators=(",", ":")).encode()
