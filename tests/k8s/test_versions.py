"""One Spark version everywhere, one Python, one Kubernetes, one operator release.

Spark: images/jars/pom.xml's spark.version, pyproject's pyspark pin, the Spark image's base tag,
the SparkApplications' sparkVersion, the Spark stand-in and the connector jars, with no
exception.
"""

from __future__ import annotations

import os
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from .dockerfiles import base_images, build_args
from .render import KUBE_VERSION, REPO_ROOT, find, kind_node_version
from .validation import make_variable

POM = REPO_ROOT / "images" / "jars" / "pom.xml"
PYPROJECT = REPO_ROOT / "pyproject.toml"
SPARK_DOCKERFILE = REPO_ROOT / "images" / "spark" / "Dockerfile"
PRODUCER_DOCKERFILE = REPO_ROOT / "images" / "producer" / "Dockerfile"
KIND_MK = REPO_ROOT / "k8s" / "kind.mk"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}
SPARK_JARS_ENV = "TICKET_PIPELINE_SPARK_JARS_DIR"


def _pom() -> ET.Element:
    return ET.parse(POM).getroot()


def _pom_property(name: str) -> str:
    value = _pom().findtext(f"m:properties/m:{name}", namespaces=NS)
    assert value, f"pom.xml has no property {name}"
    return value.strip()


def _spark_profile() -> ET.Element:
    for profile in _pom().iterfind("m:profiles/m:profile", NS):
        if profile.findtext("m:id", namespaces=NS) == "spark":
            return profile
    raise AssertionError("pom.xml has no profile 'spark'")


def _pyspark_pin() -> str:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    pins = [
        r for group in project["optional-dependencies"].values() for r in group
        if re.match(r"pyspark\b", r)
    ]  # fmt: skip
    assert len(pins) == 1, pins
    match = re.fullmatch(r"pyspark==(\d+\.\d+\.\d+)", pins[0].replace(" ", ""))
    assert match, f"pyspark must be pinned exactly, found {pins[0]!r}"
    return match.group(1)


def _spark_base_image() -> str:
    (base,) = set(base_images(SPARK_DOCKERFILE))
    return base


def test_should_pin_pyspark_to_the_poms_spark_version() -> None:
    """pyproject's pyspark==X is the pom's spark.version."""
    assert _pyspark_pin() == _pom_property("spark.version")


def test_should_build_the_spark_image_on_the_same_spark_scala_and_java() -> None:
    """The Spark image's base, for both its stages (the jars are resolved on its Java 17), is
    apache/spark:<spark.version>-scala<scala>-java17-python3-ubuntu by default."""
    spark, scala = _pom_property("spark.version"), _pom_property("scala.binary.version")
    assert _spark_base_image() == f"apache/spark:{spark}-scala{scala}-java17-python3-ubuntu"
    assert build_args(SPARK_DOCKERFILE) == {"SPARK_BASE": _spark_base_image()}


def test_should_declare_the_image_spark_version_in_the_spark_applications(
    rendered: list[dict],
) -> None:
    """Both SparkApplications say sparkVersion = the pom's spark.version."""
    spark = _pom_property("spark.version")
    for name in ("enrichment", "aggregation"):
        assert find(rendered, "SparkApplication", name)["spec"]["sparkVersion"] == spark


def test_should_take_every_spark_artifact_at_spark_version() -> None:
    """In the pom's spark profile, the one Spark artifact is the Kafka connector at
    ${spark.version}, and nothing overrides the version of its Spark dependencies."""
    profile = _spark_profile()
    dependencies = profile.findall("m:dependencies/m:dependency", NS)
    spark_deps = [d for d in dependencies if d.findtext("m:groupId", namespaces=NS) == "org.apache.spark"]
    assert [d.findtext("m:artifactId", namespaces=NS) for d in spark_deps] == [
        "spark-sql-kafka-0-10_${scala.binary.version}"
    ]
    assert all(d.findtext("m:version", namespaces=NS) == "${spark.version}" for d in spark_deps)
    assert profile.find("m:dependencyManagement", NS) is None


def test_should_resolve_connector_jars_at_the_spark_version() -> None:
    """The resolved Spark jars (make jars) carry spark.version, the token provider's too."""
    folder = Path(os.environ.get(SPARK_JARS_ENV) or REPO_ROOT / ".local" / "jars" / "spark")
    jars = sorted(p.name for p in folder.glob("*.jar"))
    if not jars:
        pytest.skip(f"no resolved jars in {folder}: `make test` resolves them first (make jars)")
    spark, scala = _pom_property("spark.version"), _pom_property("scala.binary.version")
    spark_jars = {
        m.group(1): m.group(2)
        for m in (re.fullmatch(rf"(spark-[a-z0-9-]+_{scala})-(\d+\.\d+\.\d+)\.jar", j) for j in jars)
        if m
    }
    assert spark_jars == {
        f"spark-sql-kafka-0-10_{scala}": spark,
        f"spark-token-provider-kafka-0-10_{scala}": spark,
    }
    assert any(j.startswith("kafka-clients-") for j in jars)
    assert f"postgresql-{_pom_property('postgresql.jdbc.version')}.jar" in jars


def test_should_bake_the_jars_of_the_poms_spark_profile_into_the_image() -> None:
    """The image's Maven stage resolves `-P spark` of images/jars/pom.xml into /opt/spark/jars."""
    text = SPARK_DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY images/jars/pom.xml images/jars/settings.xml ./" in text
    assert re.search(r"mvn .*-s settings\.xml -f pom\.xml -P spark", text)
    assert "dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=/jars" in text
    assert "COPY --from=jars /jars/ /opt/spark/jars/" in text


def test_should_never_download_jars_at_submit_time(rendered: list[dict]) -> None:
    """No deps.packages or spark.jars.packages: they need Ivy and internet inside the cluster."""
    for name in ("enrichment", "aggregation"):
        spec = find(rendered, "SparkApplication", name)["spec"]
        assert "deps" not in spec
        assert not {"spark.jars.packages", "spark.jars"} & set(spec.get("sparkConf", {}))


def test_should_run_python_3_11_in_both_images() -> None:
    """pyproject requires Python >= 3.11; the producer image and the Spark image's venv run 3.11."""
    requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    assert requires == ">=3.11"
    (producer_base,) = set(base_images(PRODUCER_DOCKERFILE))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", producer_base)
    spark = SPARK_DOCKERFILE.read_text(encoding="utf-8")
    assert "python3.11 python3.11-venv" in spark
    assert "python3.11 -m venv /opt/venv" in spark
    assert "PYSPARK_PYTHON=/opt/venv/bin/python3" in spark


def test_should_validate_against_the_kind_nodes_kubernetes_version() -> None:
    """The Kubernetes version of the tests is the pinned kind node's (kindest/node:v1.36.1)."""
    assert KUBE_VERSION == kind_node_version() == "1.36.1"
    config = yaml.safe_load((REPO_ROOT / "k8s" / "kind-config.yaml").read_text(encoding="utf-8"))
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert make_variable("KIND_VERSION", KIND_MK) == "v0.32.0"


def test_should_install_the_operator_chart_whose_crd_the_tests_use(operator_chart: Path) -> None:
    """make kind-up installs the very chart folder the CRD checks read: the Makefile's pinned
    release 2.5.2 (whose upstream image submits with its own Spark 4.0.4; the driver pod then
    runs our image's Spark, the pom's spark.version)."""
    assert make_variable("SPARK_OPERATOR_VERSION") == "2.5.2"
    kind_chart = make_variable("KIND_SPARK_OPERATOR_CHART", KIND_MK)
    assert kind_chart == "$(SPARK_OPERATOR_DIR)/spark-operator-chart"
    assert operator_chart.name == "spark-operator-chart"
    assert not re.search(r"^KIND_SPARK_OPERATOR_VERSION\s*:?=", KIND_MK.read_text(encoding="utf-8"), re.M)


def test_should_build_the_spark_stand_in_and_the_operator_on_it_at_the_spark_version() -> None:
    """localcluster's Spark stand-in installs pyspark at the pom's spark.version (its build script
    reads it from the pom), and the operator stand-in builds on that stand-in."""
    spark = _pom_property("spark.version")
    standins = REPO_ROOT / "tests" / "cluster"
    assert build_args(standins / "images" / "spark-base" / "Dockerfile")["SPARK_VERSION"] == spark
    script = (standins / "build_images.sh").read_text(encoding="utf-8")
    assert "spark\\.version" in script
    assert 'spark_base="ticket-pipeline-standin/spark:$spark_version"' in script
    assert '--build-arg "SPARK_VERSION=$spark_version"' in script
    operator = build_args(standins / "images" / "spark-operator" / "Dockerfile")
    assert operator["SPARK_IMAGE"] == f"ticket-pipeline-standin/spark:{spark}"
