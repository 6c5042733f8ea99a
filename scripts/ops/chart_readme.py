"""Writes charts/README.md, the chart's parameter reference, from the `## @param` and
`## @section` lines of charts/values.yaml (the bitnami readme-generator's convention).

Usage:  python -m scripts.ops.chart_readme [--output PATH]
`make test` fails when the committed file is not what this writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from core.settings import REPO_ROOT

__all__ = ["CHART_README", "render"]

CHART_DIR = REPO_ROOT / "charts"
CHART_README = CHART_DIR / "README.md"
_ANNOTATION = re.compile(r"^\s*## @(section|param) (\S+(?: .*)?)$")


def _default(values: dict[str, Any], path: str) -> str:
    node: Any = values
    for key in path.split("."):
        node = node[key]
    return f"`{json.dumps(node, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The markdown reference of the chart at CHART_DIR."""
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    source = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(source)
    lines = [
        f"# {chart['name']} chart {chart['version']} (app {chart['appVersion']})",
        "",
        f"{chart['description']}",
        "",
        "```bash",
        "helm install ticket-pipeline charts/",
        "```",
        "",
        "How to run it, scale it and tear it down: [docs/kubernetes.md](../docs/kubernetes.md).",
        "This file is generated from `values.yaml` by `python -m scripts.ops.chart_readme`; edit the",
        "`## @param` lines there, not this file.",
    ]
    for line in source.splitlines():
        match = _ANNOTATION.match(line)
        if not match:
            continue
        kind, rest = match.groups()
        if kind == "section":
            lines += ["", f"## {rest}", "", "| parameter | description | default |", "|---|---|---|"]
        else:
            path, _, description = rest.partition(" ")
            lines.append(f"| `{path}` | {_cell(description)} | {_cell(_default(values, path))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.ops.chart_readme", description=__doc__)
    parser.add_argument("--output", type=Path, default=CHART_README, help="where to write the markdown")
    args = parser.parse_args(argv)
    args.output.write_text(render(), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
