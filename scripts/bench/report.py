"""The bench's results as JSON, a markdown table (the one docs/performance.md explains) and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["markdown", "targets", "write_report"]

_DRAIN = (
    ("ours", "ours (Spark, COPY + ON CONFLICT)"),
    ("plain_consumer", "plain Python consumer"),
    ("quix", "quix-streams PostgreSQLSink (tickets only, no aggregation)"),
    ("naive_spark", "naive Spark JDBC append"),
    ("spark_floor", "the Spark floor (our Kafka read and validation, noop sink: no PostgreSQL)"),
    ("raw_copy", "raw COPY (the sink's limit)"),
)
# The least drain into `tickets`, as a share of the Spark floor's: what our sink may cost.
_FLOOR_SHARE = 0.8


def _ratio(value: float, ours: float) -> str:
    return f"{value / ours:.2f}×" if ours else "n/a"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def markdown(results: dict) -> str:
    """The tables of latest.md."""
    ours = results["ours"]["rows_per_second"]
    n = results["settings"]["tickets"]
    lines = [
        f"Measured {results['when']} on {results['machine']}; {n:,} tickets, everything local.",
        "",
        f"**Drain** ({n:,} preloaded tickets into `tickets`; ratio = figure / ours)",
        "",
        "| contender | tickets/s | ratio to ours | seconds |",
        "|---|---:|---:|---:|",
    ]
    for key, label in _DRAIN:
        r = results[key]
        rate = r["rows_per_second"]
        lines.append(f"| {label} | {rate:,.0f} | {_ratio(rate, ours)} | {r['seconds']:.1f} |")
    lines += [
        "",
        f"Aggregation exact {results['ours']['aggregation_exact_seconds']:.1f} s"
        " after the first micro-batch started.",
        "",
        "**Latency under steady load** (ours, shipped settings)",
        "",
        "| load | achieved | into `tickets` p50 / p95 / p99 / max"
        " | aggregation freshness p50 / p95 / p99 / max |",
        "|---:|---:|---|---|",
    ]
    for run in results["latency"]:
        t, a = run["tickets"], run["aggregation"]
        lines.append(
            f"| {run['rate']:,}/s | {run['achieved_rate']:,.0f}/s"
            f" | {_seconds(t['p50'])} / {_seconds(t['p95'])} / {_seconds(t['p99'])} / {_seconds(t['max'])}"
            f" | {_seconds(a['p50'])} / {_seconds(a['p95'])} / {_seconds(a['p99'])} / {_seconds(a['max'])} |"
        )
    p = results["producer"]
    lines += ["", f"**Producer**: {p['rows_per_second']:,.0f} tickets/s for one process ({n:,} tickets)."]
    return "\n".join(lines + _targets(results) + _where_the_time_goes(results)) + "\n"


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, figure reached, met?) for each target of this run, against its own baselines."""
    ours, plain, floor = results["ours"], results["plain_consumer"], results.get("spark_floor")
    rows = []
    ratio = ours["rows_per_second"] / plain["rows_per_second"]
    rows.append(
        (
            "drain into `tickets` ≥ 1.0× the plain consumer",
            f"{ours['rows_per_second']:,.0f}/s vs {plain['rows_per_second']:,.0f}/s: {ratio:.2f}×",
            ratio >= 1.0,
        )
    )
    if floor:
        ratio = ours["rows_per_second"] / floor["rows_per_second"]
        rows.append(
            (
                f"drain into `tickets` ≥ {_FLOOR_SHARE:g}× the Spark floor",
                f"{ours['rows_per_second']:,.0f}/s vs {floor['rows_per_second']:,.0f}/s: {ratio:.2f}×",
                ratio >= _FLOOR_SHARE,
            )
        )
    n = results["settings"]["tickets"]
    ours_cpu, plain_cpu = sum(ours["cpu_seconds"].values()), sum(plain["cpu_seconds"].values())
    rows.append(
        (
            f"CPU-seconds for {n:,} tickets (jobs, broker, PostgreSQL, start-up included)"
            " ≤ 1.5× the plain consumer's",
            f"{ours_cpu:,.0f} s vs {plain_cpu:,.0f} s: {ours_cpu / plain_cpu:.2f}×",
            ours_cpu <= 1.5 * plain_cpu,
        )
    )
    for job, micros in ours.get("cpu_microseconds_per_ticket", {}).items():
        label = f"CPU per ticket, {job} (drain, start-up excluded) ≤ 20 µs"
        figure = f"{micros:.0f} µs"
        if job == "enrichment" and floor and "cpu_microseconds_per_ticket" in floor:
            # The floor runs the enrichment job's query: what Spark alone takes of that.
            figure += f" (the Spark floor: {floor['cpu_microseconds_per_ticket']:.0f} µs)"
        rows.append((label, figure, micros <= 20))
    limits = {1000: 1.0, 10000: 3.0}
    for run in results["latency"]:
        limit = limits.get(run["rate"])
        if limit is None:
            continue
        for key, label in (("tickets", "into `tickets`"), ("aggregation", "aggregation")):
            p99 = run[key]["p99"]
            rows.append((f"p99 {label} at {run['rate']:,}/s ≤ {limit:g} s", f"{p99:.2f} s", p99 <= limit))
        if run["rate"] == 10000 and "last_10s" in run:
            last = max(run["last_10s"][key]["p99"] for key in ("tickets", "aggregation"))
            label = f"keeps up at {run['rate']:,}/s (p99 of the last 10 s ≤ {limit:g} s)"
            rows.append((label, f"{last:.2f} s", last <= limit))
    return rows


def _targets(results: dict) -> list[str]:
    lines = ["", "**Targets** (each against this run's own baselines)", ""]
    lines += ["| target | reached | |", "|---|---|---|"]
    lines += [f"| {target} | {figure} | {_verdict(met)} |" for target, figure, met in targets(results)]
    steady = [run for run in results["latency"] if "cpu_microseconds_per_ticket" in run]
    if steady:
        lines += ["", "CPU per ticket of the warm jobs under steady load (latency runs): "]
        lines[-1] += "; ".join(
            f"{run['rate']:,}/s: "
            + ", ".join(f"{job} {us:.0f} µs" for job, us in run["cpu_microseconds_per_ticket"].items())
            for run in steady
        )
        lines[-1] += "."
    return lines


def _where_the_time_goes(results: dict) -> list[str]:
    """CPU per component during each drain, our batch phases, our costliest SQL."""
    lines = [
        "",
        "**Where the time goes** (CPU seconds used during each drain, start-up included;"
        " the machine has "
        f"{results['machine'].split(' cores')[0]} cores)",
        "",
        "| drain | wall s | CPU s by component |",
        "|---|---:|---|",
    ]
    for key, label in _DRAIN:
        cpu = results[key].get("cpu_seconds")
        if cpu:
            parts = ", ".join(f"{name} {seconds:,.1f}" for name, seconds in cpu.items())
            lines.append(f"| {label} | {results[key]['seconds']:.1f} | {parts} |")
    lines += [
        "",
        "| our job | batches | rows | batch s | tasks s | commit s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for job, b in results["ours"].get("batches", {}).items():
        lines.append(
            f"| {job} | {b['batches']} | {b['rows']:,} | {b['seconds']:.1f}"
            f" | {b['tasks_seconds']:.1f} | {b['commit_seconds']:.1f} |"
        )
    lines += ["", "| our costliest statements | calls | s | rows |", "|---|---:|---:|---:|"]
    for st in results["ours"].get("top_statements", []):
        statement = st["statement"].replace("|", "\\|")
        lines.append(f"| `{statement}` | {st['calls']} | {st['seconds']:.1f} | {st['rows']:,} |")
    return lines


def _chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [label.split(" (")[0] for _, label in _DRAIN]
    values = [results[key]["rows_per_second"] for key, _ in _DRAIN]
    left.barh(labels, values, color=["#2b6cb0", "#718096", "#805ad5", "#a0aec0", "#dd6b20", "#cbd5e0"])
    left.set_xlabel("tickets/s (drain)")
    left.invert_yaxis()
    for i, v in enumerate(values):
        left.text(v, i, f" {v:,.0f}", va="center")
    for run in results["latency"]:
        t = run["tickets"]
        right.plot(
            ["p50", "p95", "p99", "max"],
            [t["p50"], t["p95"], t["p99"], t["max"]],
            marker="o",
            label=f"tickets at {run['rate']:,}/s",
        )
        a = run["aggregation"]
        right.plot(
            ["p50", "p95", "p99", "max"],
            [a["p50"], a["p95"], a["p99"], a["max"]],
            marker="x",
            linestyle="--",
            label=f"aggregation at {run['rate']:,}/s",
        )
    right.set_ylabel("seconds after created_at")
    right.legend()
    fig.suptitle(f"ticket-pipeline bench, {results['when']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, out_dir: Path) -> list[Path]:
    """Write latest.json, latest.md and latest.png into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "latest.json", out_dir / "latest.md", out_dir / "latest.png"]
    paths[0].write_text(json.dumps(results, indent=2, default=str) + "\n")
    paths[1].write_text(markdown(results))
    _chart(results, paths[2])
    return paths
