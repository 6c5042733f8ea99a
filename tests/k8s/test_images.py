"""The Dockerfiles of images/: pinned bases, non-root users, what they copy, what they install."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from .dockerfiles import base_images, build_args
from .render import REPO_ROOT

IMAGES = REPO_ROOT / "images"
DOCKERFILES = {name: IMAGES / name / "Dockerfile" for name in ("spark", "producer", "dashboard")}


def _load_jobs_requirements():
    """Import images/spark/jobs_requirements.py (a build script, not a package module)."""
    path = IMAGES / "spark" / "jobs_requirements.py"
    spec = importlib.util.spec_from_file_location("jobs_requirements", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_should_pin_every_base_image_tag(image: str) -> None:
    """Each FROM names an explicit version tag: never latest, never an untagged image; a base
    taken from a build argument is its single ARG, whose default is that pinned tag."""
    assert len(build_args(DOCKERFILES[image])) == 1
    for base in base_images(DOCKERFILES[image]):
        _, _, tag = base.partition(":")
        assert tag and tag != "latest", base
        assert re.search(r"\d", tag), f"{base}: tag carries no version"


@pytest.mark.parametrize(("image", "uid"), [("spark", "185"), ("producer", "10001"), ("dashboard", "10001")])
def test_should_end_as_a_numeric_non_root_user(image: str, uid: str) -> None:
    """The last USER is numeric and not 0, so runAsNonRoot can verify it."""
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILES[image].read_text(), re.M)
    assert users and users[-1].split(":")[0] == uid


@pytest.mark.parametrize(
    ("image", "copied"),
    [
        ("spark", {"pyproject.toml", "images/jars/pom.xml", "images/jars/settings.xml",
                   "images/spark/jobs_requirements.py", "core/", "jobs/"}),
        ("producer", {"pyproject.toml", "core/", "producer/"}),
        ("dashboard", {"pyproject.toml", "core/", "dashboard/"}),
    ],
)  # fmt: skip
def test_should_copy_from_the_repository_root_only_what_it_needs(image: str, copied: set[str]) -> None:
    """COPY sources are repo-root paths that exist, and the Dockerfile's .dockerignore admits
    exactly them (so the build context stays small: no .venv, no .local)."""
    text = DOCKERFILES[image].read_text()
    sources = {
        src for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M) for src in line.split()[:-1]
    }
    assert sources == copied
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
    ignore = (IMAGES / image / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything is ignored but what is re-admitted below
    assert {line[1:] for line in ignore if line.startswith("!")} == copied


def test_should_derive_the_spark_images_python_deps_from_pyproject() -> None:
    """The Spark image installs pyproject's dependencies plus its jobs extra, minus pyspark."""
    module = _load_jobs_requirements()
    requirements = module.jobs_requirements(REPO_ROOT / "pyproject.toml")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    expected = [*project["dependencies"], *project["optional-dependencies"]["jobs"]]
    assert requirements == [r for r in expected if not r.startswith("pyspark")]
    names = {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requirements}
    assert {"psycopg2-binary", "pyarrow", "pandas", "deltalake"} <= names
    assert "pyspark" not in names


def test_should_drop_pyspark_however_its_name_is_spelt(tmp_path: Path) -> None:
    """PySpark comes from the base image whatever the spelling or extras in pyproject."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["PySpark[sql] == 4.2.0"]\n'
        '[project.optional-dependencies]\njobs = ["pandas<3", "py_spark_tools>=1"]\n'
    )
    assert _load_jobs_requirements().jobs_requirements(pyproject) == [
        "pandas<3",
        "py_spark_tools>=1",
    ]


def test_should_run_the_producer_and_migrations_from_the_producer_image() -> None:
    """The producer image installs the project (core and producer) and runs `python -m producer`;
    the chart's migrate and topic Jobs run `python -m core.migrate` and `python -m producer.topic`
    from it."""
    text = DOCKERFILES["producer"].read_text()
    assert "pip install --no-cache-dir /src" in text
    assert 'CMD ["python", "-m", "producer"]' in text
    assert (REPO_ROOT / "producer" / "__main__.py").is_file()
    assert (REPO_ROOT / "core" / "migrate.py").is_file()
    assert (REPO_ROOT / "producer" / "topic.py").is_file()


def test_should_run_the_dashboard_with_its_extra_from_the_dashboard_image() -> None:
    """The dashboard image installs the project with its `dashboard` extra (NiceGUI), which
    pyproject declares, and runs `python -m dashboard`; the producer image carries no web server."""
    text = DOCKERFILES["dashboard"].read_text()
    assert 'pip install --no-cache-dir "/src[dashboard]"' in text
    assert 'CMD ["python", "-m", "dashboard"]' in text
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("nicegui") for requirement in extras["dashboard"])
    assert "[dashboard]" not in DOCKERFILES["producer"].read_text()
    assert (REPO_ROOT / "dashboard" / "__main__.py").is_file()
