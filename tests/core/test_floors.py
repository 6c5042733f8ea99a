"""The floors of the code: core/ imports nothing of ours; producer/, jobs/ and dashboard/
import only core/ (and themselves); scripts/ sits on top."""

from __future__ import annotations

import ast

import pytest

from core.settings import REPO_ROOT

OURS = {"core", "producer", "jobs", "dashboard", "scripts", "tests"}
ALLOWED = {
    "core": {"core"},
    "producer": {"core", "producer"},
    "jobs": {"core", "jobs"},
    "dashboard": {"core", "dashboard"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Our top-level packages each module of `package` imports, by module path."""
    found = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO_ROOT))] = names & OURS
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_floors_below_it(package):
    wrong = {module: sorted(names - ALLOWED[package]) for module, names in imported_packages(package).items()}
    assert {module: names for module, names in wrong.items() if names} == {}
