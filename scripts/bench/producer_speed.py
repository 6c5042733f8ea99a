"""Producer throughput on its own: `python -m scripts.bench.producer_speed`.

Two figures, each the best of `--repeat` runs:
  generator: tickets/s of building (key, value) bytes in-process, no Kafka;
  end to end: one `python -m producer --rate 0 --count N` process, exactly as `make bench`
    runs it (`producer_command`), into a local broker: N / wall time,
    and the rate of the producer's own final progress line.
Starts a temporary broker unless --bootstrap-servers is given.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.kafka import admin_client
from core.settings import LOCAL_DIR, REPO_ROOT
from producer.generator import TicketGenerator

_FINAL_LINE = re.compile(r"sent (\d+), acknowledged (\d+), failed (\d+), rate (\d+) tickets/s")


def generator_rate(count: int, burst: int = 256) -> float:
    """Tickets/s of TicketGenerator.batch, in bursts as the producer loop calls it."""
    generator = TicketGenerator(seed=1)
    started = time.perf_counter()
    for _ in range(count // burst):
        generator.batch(burst)
    return count // burst * burst / (time.perf_counter() - started)


def producer_command(bootstrap: str, topic: str, count: int, rate: float, partitions: int) -> list[str]:
    """One producer process as `make bench` runs it (rate 0 = full speed)."""
    return [
        sys.executable, "-m", "producer",
        "--bootstrap-servers", bootstrap,
        "--topic", topic,
        "--rate", f"{rate:g}",
        "--count", str(count),
        "--partitions", str(partitions),
        # No metrics endpoint: its port may be taken by a `make run` beside.
        "--metrics-port", "-1",
    ]  # fmt: skip


def producer_run(bootstrap: str, count: int, partitions: int) -> tuple[float, float, str]:
    """(count / wall seconds, the final progress line's rate, that line)."""
    topic = f"speed_{time.time_ns()}"
    started = time.monotonic()
    run = subprocess.run(
        producer_command(bootstrap, topic, count, 0, partitions),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.monotonic() - started
    admin = admin_client(bootstrap)
    admin.delete_topics([topic])[topic].result(30)  # keep the broker's disk small between runs
    lines = [line for line in run.stderr.splitlines() if _FINAL_LINE.search(line)]
    sent, acknowledged, failed, rate = map(int, _FINAL_LINE.search(lines[-1]).groups())
    if (sent, acknowledged, failed) != (count, count, 0):
        raise SystemExit(f"wrong counters: {lines[-1]}")
    return count / wall, float(rate), lines[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--generator-count", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4, help="as `make bench` (BENCH_PARTITIONS)")
    parser.add_argument("--bootstrap-servers", default="", help="an existing broker; default: start one")
    parser.add_argument("--skip-generator", action="store_true")
    parser.add_argument("--skip-producer", action="store_true")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    if not args.skip_generator:
        rates = [generator_rate(args.generator_count) for _ in range(args.repeat)]
        print(f"generator: best {max(rates):,.0f} tickets/s ({', '.join(f'{r:,.0f}' for r in rates)})")
    if args.skip_producer:
        return 0
    broker, root = None, None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        from scripts.embedded.kafka_broker import KafkaBroker
        from scripts.embedded.ports import free_port

        root = Path(tempfile.mkdtemp(prefix="producer-speed-"))
        broker = KafkaBroker(
            root / "kafka", LOCAL_DIR / "jars" / "kafka", free_port(), free_port(), log_level="WARN"
        )
        broker.start()
        bootstrap = broker.bootstrap_servers
    try:
        walls, finals = [], []
        for _ in range(args.repeat):
            wall, final, line = producer_run(bootstrap, args.count, args.partitions)
            walls.append(wall)
            finals.append(final)
            print(f"  run: {wall:,.0f} tickets/s wall; {line.split(': ', 1)[-1]}", flush=True)
        print(f"end to end ({args.count:,} tickets): best {max(walls):,.0f} tickets/s wall clock,")
        print(f"  best {max(finals):,.0f} tickets/s by the producer's final progress line")
        la = os.getloadavg()
        print(f"load: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    finally:
        if broker:
            broker.stop()
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
