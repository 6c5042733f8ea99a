"""`make run` as a new user runs it: from a clone in a private (0700) folder, with a fixed
producer count, stopped with Ctrl-C and started again.

Under root (as in CI) this is the layout that once failed: PostgreSQL runs as user postgres,
which cannot enter the clone's folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
from deltalake import DeltaTable

from core.scrape import scrape, value
from scripts.embedded import process_group
from scripts.embedded.ports import free_port
from tests.clone import copy_checkout, share_installs

pytestmark = pytest.mark.integration

FIRST_COUNT, SECOND_COUNT = 300, 200
START_TIMEOUT_SECONDS = 300
# Longer than the supervisor's restart delay (5 s) plus a few trigger intervals: a producer
# restarted after finishing would have added tickets by then.
QUIET_SECONDS = 15


class MakeRun:
    """`make run` in a clone, in its own process group as a terminal would run it."""

    def __init__(self, clone: Path, make_flags: list[str], count: int, ports: tuple[int, int]) -> None:
        self.clone = clone
        self.output = clone / f"make-run-{count}.out"
        # As a new user's shell: neither the session's database nor its broker (KAFKA_*).
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "PGPASSWORD", "PGPASSFILE") and not k.startswith("KAFKA_")
        }
        env.update(
            PRODUCER_COUNT=str(count),
            PRODUCER_RATE="200",
            SPARK_DRIVER_MEMORY="512m",
            ARGS=f"--kafka-port {ports[0]} --postgres-port {ports[1]}",
        )
        self._log = self.output.open("w")
        self.process = process_group.spawn(
            ["make", *make_flags, "run"], cwd=clone, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )  # fmt: skip

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def tail(self) -> str:
        return self.text()[-4000:]

    def ctrl_c(self) -> int:
        """SIGINT to the whole group, as Ctrl-C does; return make's exit code."""
        process_group.signal_group(self.process, signal.SIGINT)
        try:
            return self.process.wait(180)
        finally:
            self._log.close()

    def kill(self) -> None:
        process_group.stop(self.process, 0, sig=None)
        self._log.close()


@contextmanager
def make_run(clone: Path, make_flags: list[str], count: int, ports: tuple[int, int]) -> Iterator[MakeRun]:
    run = MakeRun(clone, make_flags, count, ports)
    try:
        yield run
    finally:
        run.kill()


def table_state(clone: Path, postgres_port: int) -> tuple[set[str], int] | None:
    """The stored ticket ids and the aggregation's total, or None while PostgreSQL is not up."""
    password_file = clone / ".local" / "run" / "postgres" / "password"
    if not password_file.exists():
        return None
    try:
        conn = psycopg2.connect(
            f"postgresql://tickets@127.0.0.1:{postgres_port}/tickets",
            password=password_file.read_text().strip(),
            connect_timeout=3,
        )
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ticket_id::text FROM tickets")
            ids = {row[0] for row in cur.fetchall()}
            cur.execute("SELECT coalesce(sum(ticket_count), 0) FROM tickets_aggregation")
            return ids, int(cur.fetchone()[0])
    except psycopg2.errors.UndefinedTable:
        return None
    finally:
        conn.close()


def wait_for_tickets(run: MakeRun, postgres_port: int, expected: int) -> set[str]:
    """Wait until `tickets` and the aggregation both hold `expected` tickets; return the ids."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    state = None
    while time.monotonic() < deadline:
        assert run.process.poll() is None, run.tail()
        state = table_state(run.clone, postgres_port)
        if state and len(state[0]) >= expected and state[1] >= expected:
            break
        time.sleep(2)
    assert state and len(state[0]) == expected and state[1] == expected, (state and len(state[0]), run.tail())
    return state[0]


def wait_for_delta_table(run: MakeRun, expected: set[str]) -> None:
    """Wait until make run's Delta table (.local/run/delta/tickets) holds the `expected` ticket
    ids, each once: its query runs a batch every DELTA_TRIGGER_INTERVAL_SECONDS."""
    uri = run.clone / ".local" / "run" / "delta" / "tickets"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    ids: list[str] = []
    while time.monotonic() < deadline:
        if (uri / "_delta_log").is_dir():
            ids = DeltaTable(str(uri)).to_pyarrow_table(columns=["ticket_id"])["ticket_id"].to_pylist()
            if len(ids) >= len(expected):
                break
        time.sleep(2)
    assert sorted(ids) == sorted(expected), (len(ids), run.tail())


def test_make_run_from_a_private_folder_stores_exactly_the_count_and_resumes_after_ctrl_c(
    tmp_path: Path,
) -> None:
    """In a clone inside a 0700 folder, `PRODUCER_COUNT=300 make run` stores exactly 300 tickets,
    counted by the aggregation; the producer then stays finished (one supervisor line) while the
    jobs keep running. Ctrl-C stops everything; a second `PRODUCER_COUNT=200 make run` resumes
    on the same data: 500 tickets, the first 300 among them. `make clean-data` then removes
    every file the runs made, in the clone or (under root) outside it. The enrichment's Delta
    table in .local/run holds the same ticket ids as `tickets` after each run."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    clone = copy_checkout(private / "ticket-pipeline")
    make_flags = share_installs(clone)
    ports = (free_port(), free_port())

    with make_run(clone, make_flags, FIRST_COUNT, ports) as run:
        first_ids = wait_for_tickets(run, ports[1], FIRST_COUNT)
        time.sleep(QUIET_SECONDS)
        assert run.process.poll() is None, run.tail()
        assert table_state(clone, ports[1]) == (first_ids, FIRST_COUNT), run.tail()
        text = run.text()
        assert text.count("producer finished its work (exit 0): not restarted") == 1, run.tail()
        assert "restarting in" not in text, run.tail()
        assert "ticket-pipeline is running" in text
        endpoints = dict((name, url) for url, name in re.findall(r"(http://\S+/metrics) \((\w+)\)", text))
        assert set(endpoints) == {"producer", "enrichment", "aggregation"}, run.tail()
        # The producer has finished (its endpoint with it); each job's counts equal the tables'.
        for job in ("enrichment", "aggregation"):
            samples = scrape(endpoints[job])
            stored = value(samples, "ticket_pipeline_tickets_stored_total", job_name=job, outcome="new")
            assert stored == FIRST_COUNT, (job, samples)
        assert "→ Support" in text or "→ Customer Care" in text
        wait_for_delta_table(run, first_ids)
        if os.geteuid() == 0:
            assert "PostgreSQL keeps its files in /var/lib/ticket-pipeline/" in text, run.tail()
        run.ctrl_c()
        assert "stopped; data and checkpoints kept" in run.text(), run.tail()

    with make_run(clone, make_flags, SECOND_COUNT, ports) as run:
        all_ids = wait_for_tickets(run, ports[1], FIRST_COUNT + SECOND_COUNT)
        assert first_ids < all_ids
        wait_for_delta_table(run, all_ids)
        run.ctrl_c()
        assert "stopped; data and checkpoints kept" in run.text(), run.tail()

    server_link = clone / ".local" / "run" / "postgres" / "server"
    relocated = Path(os.readlink(server_link)) if server_link.is_symlink() else None
    subprocess.run(["make", *make_flags, "clean-data"], cwd=clone, check=True, capture_output=True)
    assert not (clone / ".local" / "run").exists()
    assert relocated is None or not relocated.exists()
