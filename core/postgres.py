"""PostgreSQL connections for every part of the pipeline (psycopg2, libpq settings)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from core.settings import DatabaseSettings, mask_url

__all__ = [
    "LIBPQ_TLS_ENV",
    "STATEMENT_TIMEOUT_SECONDS",
    "DatabaseUnavailable",
    "connect",
    "connection",
    "password_clause",
    "settings_connection",
    "wait_for_database",
]

logger = logging.getLogger(__name__)


# A statement blocked longer than this is cancelled (SQLSTATE 57014, an OperationalError the
# jobs retry until DATABASE_RETRY_SECONDS) instead of waiting for ever; the setting's default.
STATEMENT_TIMEOUT_SECONDS: float = DatabaseSettings.statement_timeout_seconds


# libpq's own environment variables for TLS and authentication, read by every libpq client
# (psycopg2, psql, pg_isready) by itself: sslmode, the CA file, and the only authentication
# methods the client accepts. The chart sets them on every PostgreSQL client; outside it, set
# them, or the same keywords in DATABASE_URL's query (`?sslmode=verify-full&...`).
LIBPQ_TLS_ENV: frozenset[str] = frozenset({"PGSSLMODE", "PGSSLROOTCERT", "PGREQUIREAUTH"})


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL refused the connection or could not be reached."""


def password_clause(conn: psycopg2.extensions.connection, role: str, password: str) -> sql.Composable:
    """`PASSWORD '<SCRAM-SHA-256 verifier>'` for CREATE or ALTER ROLE, computed here by libpq:
    the clear password never reaches the server, so neither its log nor pg_stat_statements."""
    verifier = psycopg2.extensions.encrypt_password(password, role, scope=conn, algorithm="scram-sha-256")
    return sql.SQL("PASSWORD {}").format(sql.Literal(verifier))


def connect(
    database_url: str,
    *,
    application_name: str,
    connect_timeout_seconds: int = 10,
    statement_timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS,
) -> psycopg2.extensions.connection:
    """Open a connection whose statements time out after `statement_timeout_seconds` (0: never);
    the password comes from the URL, PGPASSWORD or ~/.pgpass (libpq)."""
    try:
        return psycopg2.connect(
            database_url,
            application_name=application_name,
            connect_timeout=connect_timeout_seconds,
            options=f"-c statement_timeout={round(statement_timeout_seconds * 1000)}",
        )
    except psycopg2.OperationalError as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at DATABASE_URL={mask_url(database_url)}: {detail}"
        ) from e


@contextmanager
def connection(
    database_url: str, *, application_name: str, statement_timeout_seconds: float = STATEMENT_TIMEOUT_SECONDS
) -> Iterator:
    """A connection that is closed on exit; commit is left to the caller."""
    conn = connect(
        database_url, application_name=application_name, statement_timeout_seconds=statement_timeout_seconds
    )
    try:
        yield conn
    finally:
        conn.close()


def settings_connection(settings: DatabaseSettings, *, application_name: str) -> AbstractContextManager:
    """`connection` to the settings' DATABASE_URL, with their statement timeout."""
    return connection(
        settings.database_url,
        application_name=application_name,
        statement_timeout_seconds=settings.statement_timeout_seconds,
    )


def wait_for_database(database_url: str, *, application_name: str, timeout_seconds: float) -> None:
    """Retry connecting until PostgreSQL answers; raise the last error after the timeout.

    A wrong password fails at once: retrying cannot fix it.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            connect(database_url, application_name=application_name).close()
            return
        except DatabaseUnavailable as e:
            if "password authentication failed" in str(e) or time.monotonic() > deadline:
                raise
            logger.info("waiting for PostgreSQL: %s", e)
            time.sleep(1)
