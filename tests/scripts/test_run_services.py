"""What `make run` gives each service it starts: the enrichment's Delta table in the run's
data folder, unless the user's DELTA_TABLE_URI says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.embedded.run import DatabaseUrls, Ports, _services

URLS = DatabaseUrls("postgresql://o@h/d", "postgresql://w@h/d", "postgresql://r@h/d")
PORTS = Ports(
    metrics={"producer": 19400, "enrichment": 19401, "aggregation": 19402},
    spark_ui={"enrichment": 14040, "aggregation": 14041},
    dashboard=18050,
)


def service_envs(env: dict[str, str], data: Path) -> dict[str, dict[str, str]]:
    return {service.name: service.env for service in _services(env, URLS, data, PORTS)}


def test_the_enrichment_writes_its_delta_table_in_the_runs_data_folder(tmp_path):
    """Without DELTA_TABLE_URI, the enrichment, and only it, writes <data>/delta/tickets."""
    envs = service_envs({}, tmp_path)
    assert envs["enrichment"]["DELTA_TABLE_URI"] == str(tmp_path / "delta" / "tickets")
    assert [name for name, env in envs.items() if "DELTA_TABLE_URI" in env] == ["enrichment"]


@pytest.mark.parametrize("given", ["", "/srv/lake/tickets"])
def test_the_users_delta_table_uri_wins_and_an_empty_one_turns_the_table_off(tmp_path, given):
    """DELTA_TABLE_URI in the user's environment reaches the enrichment as it is."""
    assert service_envs({"DELTA_TABLE_URI": given}, tmp_path)["enrichment"]["DELTA_TABLE_URI"] == given
