"""charts/README.md is the parameter reference generated from values.yaml's `## @param` lines."""

from __future__ import annotations

import re

from scripts.ops.chart_readme import CHART_DIR, CHART_README, render


def test_should_commit_the_chart_readme_that_the_values_generate():
    """The committed charts/README.md is what `python -m scripts.ops.chart_readme` writes."""
    assert CHART_README.read_text(encoding="utf-8") == render(), "run: python -m scripts.ops.chart_readme"


def test_should_list_every_documented_parameter_once():
    """Each `## @param` of values.yaml is one row of the reference, with its default."""
    params = re.findall(r"^\s*## @param (\S+)", (CHART_DIR / "values.yaml").read_text(), re.M)
    rows = re.findall(r"^\| `([^`]+)` \|", CHART_README.read_text(encoding="utf-8"), re.M)
    assert rows == params
    assert "| `topic.partitions` |" in render() and "| `3` |" in render()
