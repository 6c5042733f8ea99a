"""Run one slow set-up step and show that it is alive.

The command's own output passes through as it comes. Whenever it has been silent for the
interval, a line says what the step is, how long it has run and how many bytes this machine
has received meanwhile (pip, Maven and Go downloads). A last line gives the step's time.

    python3 scripts/setup/with_progress.py "installing the Python packages" -- pip install ...

Standard library only: the Makefile runs it before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "received_bytes"]

_NET_DEV = Path("/proc/net/dev")
_DEFAULT_INTERVAL_SECONDS = 5.0


def received_bytes() -> int:
    """Bytes received by this machine's network interfaces, loopback excluded (0 if unknown)."""
    try:
        lines = _NET_DEV.read_text().splitlines()[2:]
    except OSError:
        return 0
    total = 0
    for line in lines:
        name, _, counters = line.partition(":")
        if name.strip() != "lo" and counters.split():
            total += int(counters.split()[0])
    return total


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.0f} MB"


def _pump(stream, last_output: list[float]) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
        last_output[0] = time.monotonic()


def run_with_progress(step: str, command: list[str], interval_seconds: float) -> int:
    """Run `command`, print a progress line after each `interval_seconds` of silence; return its code."""
    started = time.monotonic()
    received_at_start = received_bytes()
    print(f"==> {step}", flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last_output = [started]
    sampled_at, sampled_bytes = started, received_at_start
    pump = threading.Thread(target=_pump, args=(process.stdout, last_output), daemon=True)
    pump.start()
    while True:
        try:
            code = process.wait(timeout=max(last_output[0] + interval_seconds - time.monotonic(), 0.05))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - last_output[0] >= interval_seconds:
                now, received = time.monotonic(), received_bytes()
                rate = (received - sampled_bytes) / max(now - sampled_at, 1e-3)
                print(
                    f"    ... {step}: {now - started:.0f} s, "
                    f"{_megabytes(received - received_at_start)} received so far, {rate / 1e6:.1f} MB/s now",
                    flush=True,
                )
                sampled_at, sampled_bytes = now, received
                last_output[0] = now
    pump.join()
    elapsed = time.monotonic() - started
    outcome = "done" if code == 0 else f"failed (exit {code})"
    print(f"==> {step}: {outcome} in {elapsed:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="with_progress.py",
        usage="%(prog)s STEP [--interval-seconds N] -- COMMAND ...",
        description="Run a slow step, with a progress line while it is silent.",
    )
    parser.add_argument("step", help="what the step does, e.g. 'installing the Python packages'")
    parser.add_argument(
        "--interval-seconds",
        type=float,
        default=float(os.environ.get("PROGRESS_INTERVAL_SECONDS") or _DEFAULT_INTERVAL_SECONDS),
        help="seconds of silence between progress lines (env PROGRESS_INTERVAL_SECONDS, default 5)",
    )
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("no command given: with_progress.py STEP -- COMMAND ...")
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    if args.interval_seconds <= 0:
        parser.error(
            f"--interval-seconds (PROGRESS_INTERVAL_SECONDS) must be > 0, got {args.interval_seconds}"
        )
    return run_with_progress(args.step, argv[split + 1 :], args.interval_seconds)


if __name__ == "__main__":
    sys.exit(main())
