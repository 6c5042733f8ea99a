"""A private PostgreSQL server from the system's binaries, with its data in one folder.

The first start runs initdb with password (scram) authentication and creates three
roles: `tickets`, owner of the database `tickets` (migrations), `tickets_writer`, the
Spark jobs' role, and `tickets_reader`, the dashboard's (core.migrate grants each only
what it needs). Their generated passwords are kept in `<root>/password`,
`<root>/writer-password` and `<root>/reader-password`, and in a libpq `<root>/pgpass`
file (all mode 0600 from their creation on). Roles get SCRAM verifiers made here, never a
clear password the server could log.

PostgreSQL refuses to run as root, so under root the server runs as the `postgres` system
user, which must be able to enter the server's folder. When it cannot (a clone under /root,
or inside any 0700 folder), `<root>` keeps only the passwords, and the server's own files
(data, socket, log) go to RELOCATED_ROOT/postgres-<hash of <root>>, linked from `<root>/server`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from core.components import DATABASE
from core.postgres import password_clause
from scripts.embedded.prerequisites import MissingPrerequisite, find_postgres_bin
from scripts.embedded.private_files import write_private

__all__ = ["PostgresServer"]

logger = logging.getLogger(__name__)

_ADMIN = "postgres"
_SERVER_USER = "postgres"  # who runs the server when we are root
RELOCATED_ROOT = Path("/var/lib/ticket-pipeline")


@dataclass
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:`port` with role and database `name`."""

    root_dir: Path
    port: int = DATABASE.port
    name: str = "tickets"
    writer: str = "tickets_writer"
    reader: str = "tickets_reader"
    settings: tuple[str, ...] = ()  # extra server settings, "name=value"

    @functools.cached_property
    def server_dir(self) -> Path:
        """The folder of the server's own files: `root_dir`, unless the server's user cannot enter it."""
        link = self.root_dir / "server"
        if link.is_symlink():
            return Path(os.readlink(link))
        if os.geteuid() != 0:
            return self.root_dir
        self.root_dir.mkdir(parents=True, exist_ok=True)
        if _server_user_can_enter(self.root_dir.parent):
            return self.root_dir
        return self._relocate(link)

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def database_url(self) -> str:
        """The application's URL, without password (it is in PGPASSWORD / the pgpass file)."""
        return self.url_for(self.name)

    @property
    def writer_url(self) -> str:
        """The Spark jobs' URL: the least-privileged role, on the application database."""
        return self.url_for(self.name, user=self.writer)

    @property
    def reader_url(self) -> str:
        """The dashboard's URL: the role that may only read, on the application database."""
        return self.url_for(self.name, user=self.reader)

    def url_for(self, database: str, user: str | None = None) -> str:
        return f"postgresql://{user or self.name}@127.0.0.1:{self.port}/{database}"

    @property
    def password(self) -> str:
        return self._secret("password")

    @property
    def writer_password(self) -> str:
        return self._secret("writer-password")

    @property
    def reader_password(self) -> str:
        return self._secret("reader-password")

    @property
    def admin_password(self) -> str:
        return self._secret("admin-password")

    @property
    def pgpass_file(self) -> Path:
        return self.root_dir / "pgpass"

    def start(self) -> None:
        """Initialise on first use, then start the server and wait until it accepts connections."""
        bin_dir = find_postgres_bin()
        first_time = not (self.data_dir / "PG_VERSION").exists()
        if first_time:
            self._init(bin_dir)
        socket_dir = self.server_dir / "socket"
        socket_dir.mkdir(exist_ok=True)
        self._chown(socket_dir)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={socket_dir} -c max_connections=200"
        ) + "".join(f" -c {setting}" for setting in self.settings)
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self._log_file),
                "-o",
                options,
            ]
        )
        self._ensure_roles()
        logger.info("PostgreSQL ready at %s", self.database_url)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id, while the server runs."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` rolls back open transactions; `immediate` is a crash)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run([str(find_postgres_bin() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data_dir)])

    def delete_files(self) -> None:
        """Delete the server's files and its passwords; the server must be stopped."""
        if self.server_dir != self.root_dir:
            shutil.rmtree(self.server_dir, ignore_errors=True)
        shutil.rmtree(self.root_dir, ignore_errors=True)

    def admin_connection(self, database: str = "postgres"):
        """A superuser connection, for tests and set-up."""
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=_ADMIN,
            dbname=database,
            password=self.admin_password,
        )

    def create_database(self, database: str) -> str:
        """Create a database owned by the application role; return its URL."""
        self._admin_execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(self.name))
        )
        return self.url_for(database)

    def drop_database(self, database: str) -> None:
        self._admin_execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )

    def _admin_execute(self, *statements: sql.Composable) -> None:
        """Run statements as the superuser, outside any transaction (CREATE DATABASE needs it)."""
        conn = self.admin_connection()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    @property
    def _log_file(self) -> Path:
        return self.server_dir / "postgres.log"

    def _relocate(self, link: Path) -> Path:
        """Give the server a folder its user can enter; move data that was left in `root_dir`."""
        key = hashlib.sha256(str(self.root_dir.resolve()).encode()).hexdigest()[:12]
        target = RELOCATED_ROOT / f"postgres-{key}"
        target.mkdir(parents=True, exist_ok=True)
        RELOCATED_ROOT.chmod(0o755)
        (target / "owner").write_text(f"{self.root_dir.resolve()}\n")
        self._chown(target)
        if (target / "data").exists() and not (self.root_dir / "admin-password").exists():
            # `<root>` was deleted, passwords and all: nobody can log into that server any more.
            shutil.rmtree(target / "data")
            logger.warning(
                "removed the database in %s: its passwords went with %s, so a new one is initialised",
                target,
                self.root_dir,
            )
        for name in ("data", "postgres.log"):
            if (self.root_dir / name).exists() and not (target / name).exists():
                shutil.move(self.root_dir / name, target / name)
        link.symlink_to(target)
        logger.info(
            "user %s cannot enter %s, so PostgreSQL keeps its files in %s (linked from %s)",
            _SERVER_USER,
            self.root_dir.parent,
            target,
            link,
        )
        return target

    def _init(self, bin_dir: Path) -> None:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        self.server_dir.mkdir(parents=True, exist_ok=True)
        self._write_secrets()
        pwfile = self.server_dir / "initdb-pwfile"
        write_private(pwfile, self.admin_password)
        self._chown(self.server_dir, pwfile)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    _ADMIN,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _ensure_roles(self) -> None:
        """Create the owner, writer and reader roles and the database where missing (older data too)."""
        self._write_secrets()
        conn = self.admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT rolname FROM pg_roles")
                roles = {row[0] for row in cur.fetchall()}
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
                has_database = cur.fetchone() is not None
            creates = [
                sql.SQL("CREATE ROLE {} LOGIN {}").format(
                    sql.Identifier(role), password_clause(conn, role, password)
                )
                for role, password in self._role_passwords()
                if role not in roles
            ]
        finally:
            conn.close()
        self._admin_execute(*creates)
        if not has_database:
            self.create_database(self.name)

    def _write_secrets(self) -> None:
        """Generate each missing password once; (re)write the pgpass file of the three roles."""
        for key in ("password", "writer-password", "reader-password", "admin-password"):
            path = self.root_dir / key
            if not path.exists():
                write_private(path, secrets.token_urlsafe(24), exclusive=True)
        lines = (f"127.0.0.1:{self.port}:*:{role}:{password}\n" for role, password in self._role_passwords())
        write_private(self.pgpass_file, "".join(lines))

    def _role_passwords(self) -> list[tuple[str, str]]:
        return [
            (self.name, self.password),
            (self.writer, self.writer_password),
            (self.reader, self.reader_password),
        ]

    def _secret(self, key: str) -> str:
        path = self.root_dir / key
        if not path.exists():
            raise MissingPrerequisite(f"{path} is missing: the embedded PostgreSQL was not initialised")
        return path.read_text().strip()

    def _run(self, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["runuser", "-u", _SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            log = self._log_file
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )

    def _chown(self, *paths: Path) -> None:
        """Under root, hand the server's files to the server's user."""
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam(_SERVER_USER)
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)


def _server_user_can_enter(folder: Path) -> bool:
    """Whether the server's user may enter `folder` (every folder above it included)."""
    check = ["runuser", "-u", _SERVER_USER, "--", "test", "-x", str(folder)]
    return subprocess.run(check, capture_output=True).returncode == 0
