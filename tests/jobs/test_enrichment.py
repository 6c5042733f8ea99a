"""The enrichment job's console lines (jobs/enrichment.py): the sender's text cannot drive the terminal."""

from __future__ import annotations

import uuid

from core.settings import load
from jobs.batch_outcomes import BatchOutcome
from jobs.enrichment import format_ticket, reporter
from jobs.settings import EnrichmentSettings

HOSTILE_REQUEST = "Écran noir\x1b[31m\r\nbatch 99: 0 valid\u009b2J"


def _ticket(request: str) -> dict:
    return {
        "ticket_id": str(uuid.uuid4()),
        "client_id": "CLIENT-042",
        "type": "incident",
        "priority": "high",
        "team": "support",
        "request": request,
    }


def test_a_request_with_control_characters_is_printed_escaped_on_one_line():
    """ESC, CR, LF and CSI (U+009B) in a request show as \\xNN; the French accent stays."""
    line = format_ticket(_ticket(HOSTILE_REQUEST))
    assert "« Écran noir\\x1b[31m\\x0d\\x0abatch 99: 0 valid\\x9b2J »" in line
    assert line.isprintable()


def test_the_reporter_prints_the_sample_escaped(writer_url, capsys):
    """The driver's report of a batch, the one place that prints tickets, prints a hostile
    request on one line with no control character."""
    settings = load(EnrichmentSettings, [], environ={"DATABASE_URL": writer_url})
    outcome = BatchOutcome(
        job="enrichment",
        batch_id=7,
        valid_by_type={"incident": 1},
        new=1,
        sample=[_ticket(HOSTILE_REQUEST)],
        rejected=1,
        rejected_sample=[
            {"kafka_topic": "t", "kafka_partition": 0, "kafka_offset": 3, "reason": "bad\u202eon"}
        ],
    )
    reporter(settings)(outcome)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("batch 7: 1 valid (1 new)")
    assert printed[1].endswith("« Écran noir\\x1b[31m\\x0d\\x0abatch 99: 0 valid\\x9b2J »")
    assert printed[2] == "  REJECTED t/0@3: bad\\u202eon"
    assert len(printed) == 3 and all(line.isprintable() for line in printed)
