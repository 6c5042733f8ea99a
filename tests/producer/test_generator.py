"""The ticket generator: realistic, varied, bounded client population."""

from __future__ import annotations

import itertools
import json
import os
import re
import string
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from core.contract import CREATED_AT_PATTERN, Priority, TicketType, reject_reason
from producer import generator as generator_module
from producer.generator import TicketGenerator, encode, ticket_id_of
from producer.texts import SLOTS, TEMPLATES


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


def test_values_are_valid_tickets_byte_identical_to_encode():
    """The fast path writes exactly what json.dumps of the ticket dict writes, keyed by client."""
    generator = TicketGenerator(clients=100, seed=4)
    pairs = generator.batch(5000) + [generator.batch(1)[0] for _ in range(100)]
    for key, value in pairs:
        assert reject_reason(value) is None, value
        ticket = json.loads(value)
        assert list(ticket) == ["ticket_id", "client_id", "created_at", "request", "type", "priority"]
        assert encode(ticket) == value
        assert key == ticket["client_id"].encode()
        assert ticket_id_of(value) == ticket["ticket_id"]
    assert any("é".encode() in value for _, value in pairs)  # UTF-8, not \u00e9


def test_ticket_ids_are_random_uuid4_distinct_across_generators():
    """Canonical lowercase UUID4s (version 4, RFC 4122 variant), never repeated, seed or not."""
    a, b = TicketGenerator(seed=9), TicketGenerator(seed=9)
    ids = [json.loads(v)["ticket_id"] for g in (a, b) for _, v in g.batch(20_000)]
    assert len(set(ids)) == len(ids)
    for ticket_id in ids[:2000] + ids[-2000:]:
        parsed = uuid.UUID(ticket_id)
        assert (str(parsed), parsed.version, parsed.variant) == (ticket_id, 4, uuid.RFC_4122)
    # Every hex digit position but the version varies.
    assert all(len({i[k] for i in ids}) > 1 for k in range(36) if k not in (8, 13, 14, 18, 23))


def test_created_at_is_now_in_utc_milliseconds():
    generator = TicketGenerator(seed=5)
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    stamps = [json.loads(v)["created_at"] for _, v in generator.batch(2000)]
    after = datetime.now(UTC)
    for stamp in stamps:
        assert re.search(CREATED_AT_PATTERN, stamp) and stamp.endswith("+00:00")
        assert before <= datetime.fromisoformat(stamp) <= after
    fixed = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert generator.ticket(now=fixed)["created_at"] == "2026-01-02T03:04:05.678+00:00"


def test_a_seed_reproduces_batches_too():
    """Same seed, same clients, texts, types and priorities in the fast path; ids differ."""

    def content(generator):
        return [
            {k: v for k, v in json.loads(value).items() if k not in ("ticket_id", "created_at")}
            for _, value in generator.batch(500)
        ]

    assert content(TicketGenerator(seed=21)) == content(TicketGenerator(seed=21))
    assert content(TicketGenerator(seed=21)) != content(TicketGenerator(seed=22))


def test_requests_are_exactly_the_template_renderings():
    """The pre-rendered halves give every rendering of every template, each once: the text
    variety and its uniform distribution are those of template.format over the slots."""
    for template in itertools.chain.from_iterable(TEMPLATES.values()):
        firsts, seconds = generator_module._halves(template)
        # The number of "ma commande n°{numero}" is a \x00 marker until a ticket is made.
        halves = [(f + s).replace(b"\x00", b"\\u0000") for f in firsts for s in seconds]
        built = [json.loads(b'"' + text + b'"') for text in halves]
        assert sorted(built) == sorted(_original_renderings(template)), template


def test_types_and_priorities_follow_their_weights():
    tickets = [json.loads(v) for _, v in TicketGenerator(seed=6).batch(30_000)]
    types = Counter(t["type"] for t in tickets)
    priorities = Counter(t["priority"] for t in tickets)
    for counts, weights in (
        (types, {"incident": 5, "demande": 3, "question": 2}),
        (priorities, {"low": 3, "medium": 5, "high": 2}),
    ):
        for name, weight in weights.items():
            assert abs(counts[name] / len(tickets) - weight / 10) < 0.015, (name, counts)
    numbers = [int(m) for t in tickets for m in re.findall(r"n°(\d+)", t["request"])]
    assert numbers and all(10000 <= n <= 99999 for n in numbers)
    assert len(set(numbers)) > 0.9 * len(numbers)


def test_ticket_id_of_falls_back_to_json_for_other_layouts():
    value = json.dumps({"client_id": "CLI-000001", "ticket_id": str(uuid.uuid4())}).encode()
    assert ticket_id_of(value) == json.loads(value)["ticket_id"]


def _original_renderings(template: str) -> list[str]:
    """Every text the original generator could write from `template` (numero as \\x00)."""
    slots = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    texts = []
    for values in itertools.product(*(SLOTS[s] for s in slots)):
        filled = dict(zip(slots, values, strict=True))
        if "objet" in filled:
            filled["objet"] = filled["objet"].format(numero="\x00")
        text = template.format(**filled).strip()
        texts.append(text[0].upper() + text[1:])
    return texts


def test_a_forked_child_never_reuses_the_parents_ticket_ids():
    """Ids are made in bulk ahead of use; a fork must not hand the same ones to both."""
    generator = TicketGenerator(seed=10)
    generator.batch(10)  # the bulk of ids is made
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write, b"\n".join(ticket_id_of(v).encode() for _, v in generator.batch(100)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as child_output:
        child_ids = set(child_output.read().decode().split())
    os.waitpid(pid, 0)
    parent_ids = {ticket_id_of(v) for _, v in generator.batch(100)}
    assert len(child_ids) == 100
    assert not child_ids & parent_ids
