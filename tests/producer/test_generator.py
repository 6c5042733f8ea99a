"""The ticket generator: realistic, varied, bounded client population."""

from __future__ import annotations

from collections import Counter

from core.contract import Priority, TicketType
from producer.generator import TicketGenerator


def test_clients_recur_within_a_bounded_population():
    """With 50 clients, 1000 tickets come from at most 50 client ids, most of them used."""
    generator = TicketGenerator(clients=50, seed=1)
    clients = Counter(generator.ticket()["client_id"] for _ in range(1000))
    assert len(clients) <= 50
    assert len(clients) > 40
    assert all(c.startswith("CLI-") for c in clients)


def test_every_type_and_priority_occurs():
    """A few hundred tickets cover all types and priorities."""
    generator = TicketGenerator(seed=2)
    tickets = [generator.ticket() for _ in range(500)]
    assert {t["type"] for t in tickets} == {t.value for t in TicketType}
    assert {t["priority"] for t in tickets} == {p.value for p in Priority}


def test_requests_are_french_and_fit_the_type():
    """Incidents describe a failure, demandes ask for something, questions ask a question."""
    generator = TicketGenerator(seed=3)
    tickets = [generator.ticket() for _ in range(300)]
    by_type = {t: [x["request"] for x in tickets if x["type"] == t] for t in ("incident", "question")}
    assert any("erreur" in r or "plante" in r or "ne fonctionne plus" in r for r in by_type["incident"])
    assert all("?" in r or "question" in r.lower() for r in by_type["question"])
    assert len({t["request"] for t in tickets}) > 250


def test_a_seed_reproduces_the_content_but_never_the_ids():
    """Two generators with one seed write the same texts, with distinct ticket ids."""
    a, b = TicketGenerator(seed=9), TicketGenerator(seed=9)
    ta, tb = a.ticket(), b.ticket()
    assert (ta["client_id"], ta["request"], ta["type"]) == (tb["client_id"], tb["request"], tb["type"])
    assert ta["ticket_id"] != tb["ticket_id"]
