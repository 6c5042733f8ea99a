"""The Spark session and the Kafka source, shared by both jobs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import DataFrame, SparkSession

from core.kafka import KafkaConnection, spark_options
from jobs.settings import JobSettings

__all__ = ["ARROW_BATCH_BYTES", "build_session", "kafka_stream"]

logger = logging.getLogger(__name__)

# Set by spark-submit in the environment of the Python process it starts.
_GATEWAY_ENV = "PYSPARK_GATEWAY_PORT"
_WORKER_PYTHON_ENV = "PYSPARK_PYTHON"
_LOCAL_IP_ENV = "SPARK_LOCAL_IP"
_SERVLET = "spark.metrics.conf.*.sink.prometheusServlet"
ARROW_BATCH_BYTES = 16 * 2**20


def build_session(app_name: str, settings: JobSettings, ui_port: int) -> SparkSession:
    """A session for one job; what spark-submit already configured (Kubernetes) wins."""
    # The sinks run in Python workers, which must have this Python's packages (pyarrow,
    # psycopg2): by default, workers of a local run are this very interpreter.
    os.environ.setdefault(_WORKER_PYTHON_ENV, sys.executable)
    if _GATEWAY_ENV in os.environ:
        # Started by spark-submit, whose JVM holds the submitted conf (master k8s://...). A
        # SparkConf made before PySpark joins that JVM is empty: join it first, or local[*]
        # would override the master and the driver would run every task itself.
        SparkContext._ensure_initialized()
    else:
        # The JVM that PySpark is about to start binds its UI to SPARK_LOCAL_IP, else to every
        # interface (WebUI.bind), and takes it as its host name: BIND_HOST wins. Its RPC and
        # block manager bind to spark.driver.bindAddress. Under spark-submit (Kubernetes), the
        # submitted address stays: binding elsewhere than the advertised host breaks the driver.
        os.environ[_LOCAL_IP_ENV] = settings.bind_host
    submitted = SparkConf()
    config = {
        "spark.ui.port": str(ui_port),
        "spark.ui.showConsoleProgress": "false",
        # A visitor of the UI must not be able to kill the query's jobs.
        "spark.ui.killEnabled": "false",
        "spark.sql.session.timeZone": "UTC",
        # Options whose name matches are shown redacted in plans and the UI: the Kafka source's
        # kafka.sasl.jaas.config holds SASL's password.
        "spark.sql.redaction.options.regex": "(?i)url|password|jaas|secret|token",
        # The jobs never shuffle much; the default 200 partitions only cost scheduling.
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": settings.driver_memory,
        "spark.driver.extraJavaOptions": settings.java_options,
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        # Spark's own metrics in Prometheus format on the UI port: /metrics/prometheus
        # (driver) and /metrics/executors/prometheus (executors).
        "spark.ui.prometheus.enabled": "true",
        f"{_SERVLET}.class": "org.apache.spark.metrics.sink.PrometheusServlet",
        f"{_SERVLET}.path": "/metrics/prometheus",
        "spark.sql.streaming.metricsEnabled": "true",
        # The sinks get their rows in Arrow batches of at most this many bytes (with at most
        # Spark's default 10,000 rows): what one Python worker holds of a batch at a time.
        "spark.sql.execution.arrow.maxBytesPerBatch": str(ARROW_BATCH_BYTES),
    }
    if _GATEWAY_ENV not in os.environ:
        config["spark.driver.bindAddress"] = settings.bind_host
    jars = sorted(Path(settings.jars_dir).glob("*.jar")) if settings.jars_dir else []
    if jars:
        config["spark.jars"] = ",".join(str(j) for j in jars)
    builder = SparkSession.builder.appName(app_name)
    if not submitted.contains("spark.master"):
        builder = builder.master(settings.spark_master)
    for key, value in config.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    _quiet(spark, "org.apache.spark.sql.execution.streaming.runtime.ProcessingTimeExecutor")
    # It logs a failed query with its cause; run_job reports the same failure, once.
    _quiet(spark, "org.apache.spark.sql.execution.streaming.runtime.MicroBatchExecution", "FATAL")
    return spark


def _quiet(spark: SparkSession, logger_name: str, level: str = "ERROR") -> None:
    """Raise one noisy JVM logger to `level` (a slow batch is reported by our progress line)."""
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        logger_name, jvm.org.apache.logging.log4j.Level.getLevel(level)
    )


def kafka_stream(spark: SparkSession, settings: JobSettings) -> DataFrame:
    """The tickets topic as a stream of raw Kafka records, at most MAX_OFFSETS_PER_TRIGGER a
    micro-batch."""
    # The connection (kafka.bootstrap.servers, and any security option) comes from core.kafka.
    connection = KafkaConnection.from_settings(settings)
    reader = spark.readStream.format("kafka").options(**spark_options(connection))
    return (
        reader.option("subscribe", settings.topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
        # Losing data (topic deleted, retention passed) must stop the job, not skip silently.
        .option("failOnDataLoss", "true")
        .load()
    )
