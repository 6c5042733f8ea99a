"""Slow set-up steps show progress: the wrapper, and the Makefile's use of it on every slow step."""

from __future__ import annotations

import re
import subprocess
import sys

from core.settings import REPO_ROOT

WRAPPER = REPO_ROOT / "scripts" / "setup" / "with_progress.py"
# Commands that download or build for more than a few seconds on a first run.
SLOW_COMMANDS = ("-m venv", "pip install", "resolve_jars.sh", "go install", "fetch_go_module.sh")


def run_wrapper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WRAPPER), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_should_print_a_progress_line_while_the_command_is_silent() -> None:
    """The command's output passes through; each silent second gets a line with the step, the
    time so far and the bytes received; the last line gives the outcome and the total time."""
    done = run_wrapper(
        "a quiet step", "--interval-seconds", "1", "--", "sh", "-c", "echo begin; sleep 3.5; echo end"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "==> a quiet step"
    assert lines[1] == "begin" and lines[-2] == "end"
    progress = [line for line in lines if line.startswith("    ... a quiet step: ")]
    assert len(progress) >= 2, lines
    assert all(re.fullmatch(r"    \.\.\. a quiet step: \d+ s, [\d,]+ MB received so far, [\d.]+ MB/s now", p)
               for p in progress)  # fmt: skip
    assert re.fullmatch(r"==> a quiet step: done in \d+ s", lines[-1])


def test_should_pass_the_commands_exit_code_through() -> None:
    """A failing step fails the wrapper with the same code, and says so."""
    failed = run_wrapper("a failing step", "--", "sh", "-c", "exit 3")
    assert failed.returncode == 3
    assert "==> a failing step: failed (exit 3)" in failed.stdout


def test_should_refuse_a_call_without_a_command() -> None:
    """No command after `--` is a usage error that names the expected form."""
    refused = run_wrapper("a step")
    assert refused.returncode == 2
    assert "STEP -- COMMAND" in refused.stderr


def test_should_wrap_every_slow_set_up_step_of_the_makefile(tmp_path) -> None:
    """On a fresh clone, every download or build that `make run` and `make test` start (venv,
    pip, Maven, Go) runs under the progress wrapper."""
    plan = subprocess.run(
        ["make", "-n", "-B", "install", "jars", "helm", "spark-operator",
         f"VENV={tmp_path}/venv", f"LOCAL={tmp_path}/local"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.replace("\\\n", " ")  # fmt: skip
    slow = [line for line in plan.splitlines() if any(command in line for command in SLOW_COMMANDS)]
    assert {command for command in SLOW_COMMANDS if any(command in line for line in slow)} == set(
        SLOW_COMMANDS
    )
    unwrapped = [line for line in slow if not re.match(r"\S*python3? scripts/setup/with_progress\.py ", line)]
    assert unwrapped == []
