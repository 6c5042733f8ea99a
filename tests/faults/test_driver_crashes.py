"""kill -9 of the Spark drivers at random points while a producer runs.

Each job is SIGKILLed as a whole process group (the Python driver and its JVM), then
restarted from its checkpoint, twice: once within milliseconds of a micro-batch's
database commit (its ticket_pipeline_batches_total rises right after the commit, before
Spark commits the checkpoint, so the restarted job replays that batch), and once at a
random point of its work. Micro-batches are small (500 records) and frequent (0.5 s). The
replays are counted from the restarted starts' metrics (tickets found already stored).
"""

from __future__ import annotations

import time

import pytest

from tests.faults.database import read_ledger
from tests.faults.end_state import assert_exact, report, wait_until_drained
from tests.faults.pipeline import Pipeline
from tests.faults.processes import log
from tests.faults.topics import topic_ticket_ids

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

KILLS_PER_JOB = 2
JOBS = ("enrichment", "aggregation")


def test_drivers_killed_at_random_points_and_restarted_lose_and_double_no_ticket(
    kafka_connection, postgres_server, topic, writer_url, tmp_path, fault_random, record_property
):
    """After four kill -9 of the drivers and restarts from their checkpoints, `tickets` holds
    exactly the ticket_ids the producer had acknowledged (none missing, none twice) and
    `tickets_aggregation` equals the GROUP BY over `tickets`."""
    started = time.monotonic()
    rng = fault_random
    pipeline = Pipeline(
        kafka=kafka_connection,
        topic=topic,
        database_url=writer_url,
        password=postgres_server.writer_password,
        work_dir=tmp_path,
        rate=300,
        seed=rng.randrange(1 << 30),
        max_offsets_per_trigger=500,
    )
    try:
        pipeline.start_flowing()

        # The jobs take turns, the first one drawn at random: one is killed while the
        # other may still be restarting, as crashes in a real cluster overlap. Each job
        # is killed once right after a micro-batch's database commit (its batch counter
        # rises then, before Spark commits the checkpoint: the batch is replayed on
        # restart) and once at a random point of a batch, in a random order.
        first = rng.choice(JOBS)
        victims = [first, JOBS[1 - JOBS.index(first)]] * KILLS_PER_JOB
        modes = {job: rng.sample(["after commit", "random point"], 2) for job in JOBS}
        log(f"kill schedule: {[(v, modes[v][i // 2]) for i, v in enumerate(victims)]}")
        for i, victim in enumerate(victims):
            batches = rng.randint(1, 6)
            if modes[victim][i // 2] == "after commit":
                pipeline.wait_for_new_batches(victim, batches, timeout_seconds=180, poll_seconds=0.002)
                pipeline.kill_job(victim, note=f", right after the commit of {batches} new batches")
            else:
                delay = rng.uniform(0, 1.5)
                pipeline.wait_for_new_batches(victim, batches, timeout_seconds=180)
                pipeline.sleep(delay)
                pipeline.kill_job(victim, note=f", {batches} new batches + {delay:.2f}s")
        # Production goes on until the last restarted driver is up again.
        pipeline.wait_until_jobs_up()

        assert pipeline.stop_producer() == 0, pipeline.producer.tail()
        ledger = read_ledger(pipeline.ledger)
        state = wait_until_drained(pipeline, ledger, timeout_seconds=240)
        codes = pipeline.stop_jobs()
        in_topic = topic_ticket_ids(kafka_connection, topic)
        replays = pipeline.replayed_batches()
        for line in replays:
            log(f"replayed after a kill, nothing added: {line}")

        report(
            record_property,
            "driver kill -9",
            state,
            started,
            kills=len(pipeline.kills),
            restarts=len(pipeline.kills) + sum(pipeline.restarts.values()),
            unexpected_exits=len(pipeline.unexpected_exits),
            replayed_batches=len(replays),
            records_in_topic=sum(in_topic.values()),
        )
        assert_exact(state, pipeline)
        assert len(pipeline.kills) == 2 * KILLS_PER_JOB
        assert not pipeline.unexpected_exits, (
            "a job exited on its own after a kill -9 and restart:\n"
            + "\n".join(f"{job} exited {code}:\n{tail}" for job, code, tail in pipeline.unexpected_exits)
        )
        assert codes == {"enrichment": 0, "aggregation": 0}, pipeline.tails()
    finally:
        pipeline.close()
