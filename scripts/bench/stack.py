"""The bench's own broker and PostgreSQL, in a temporary folder, with one database per contender."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from core.migrations import apply_migrations, grant_writer
from core.settings import LOCAL_DIR
from scripts.bench.profile import CpuMeter, top_statements
from scripts.embedded.kafka_broker import KafkaBroker
from scripts.embedded.ports import free_port
from scripts.embedded.postgres_server import PostgresServer

__all__ = ["BenchStack"]


@dataclass
class BenchStack:
    """A broker and a PostgreSQL on free ports, removed on close."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ticket-pipeline-bench-")))

    def __post_init__(self) -> None:
        self.broker = KafkaBroker(
            self.root / "kafka",
            LOCAL_DIR / "jars" / "kafka",
            free_port(),
            free_port(),
            heap="1g",
            log_level="WARN",
        )
        self.postgres = PostgresServer(
            self.root / "postgres",
            port=free_port(),
            settings=("shared_preload_libraries=pg_stat_statements",),
        )

    def start(self) -> None:
        self.broker.start()
        self.postgres.start()

    def close(self) -> None:
        self.broker.stop()
        self.postgres.stop()
        self.postgres.delete_files()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        """Environment for the processes under test: both roles' passwords via PGPASSFILE, and
        the bench's broker (its client environment, none of the caller's KAFKA_* settings)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PGPASSWORD", "DATABASE_URL") and not k.startswith("KAFKA_")
        }
        env["PGPASSFILE"] = str(self.postgres.pgpass_file)
        env.update(self.broker.client_env())
        return env

    def database(self, name: str) -> tuple[str, str]:
        """A fresh database with the schema; (owner URL, writer URL)."""
        url = self.postgres.create_database(name)
        conn = psycopg2.connect(url, password=self.postgres.password)
        apply_migrations(conn)
        grant_writer(conn, self.postgres.writer, password=None)
        conn.close()
        admin = self.postgres.admin_connection(name)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        admin.close()
        return url, self.postgres.url_for(name, user=self.postgres.writer)

    def connect(self, url: str):
        return psycopg2.connect(url, password=self.postgres.password)

    def cpu_meter(self, **processes: int) -> CpuMeter:
        """A CPU meter of the broker, PostgreSQL and the given processes (name=pid)."""
        return CpuMeter({"broker": self.broker.pid, "postgres": self.postgres.pid, **processes})

    def top_statements(self, database: str) -> list[dict]:
        conn = self.postgres.admin_connection(database)
        try:
            return top_statements(conn)
        finally:
            conn.close()
