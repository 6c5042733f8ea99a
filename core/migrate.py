"""Apply the database schema: `python -m core.migrate [--database-url URL]`.

Idempotent: a second run applies nothing. The embedded stack, the tests and the
Helm chart's migrate Job all run this same command.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from core.logs import configure_logging
from core.migrations import MIGRATIONS, apply_migrations, grant_reader, grant_writer
from core.postgres import DatabaseUnavailable, connection, wait_for_database
from core.settings import DatabaseSettings, SettingError, at_least, load, mask_url, setting

logger = logging.getLogger("core.migrate")


@dataclass(frozen=True, kw_only=True)
class MigrateSettings(DatabaseSettings):
    """Apply the ticket-pipeline schema to PostgreSQL."""

    wait_seconds: float = setting(
        "DATABASE_WAIT_SECONDS",
        "--wait-seconds",
        30.0,
        "How long to wait for PostgreSQL to accept connections",
        at_least(0),
    )
    writer_role: str = setting(
        "DATABASE_WRITER_ROLE",
        "--writer-role",
        "tickets_writer",
        "Role of the Spark jobs, granted only what they need; created when DATABASE_WRITER_PASSWORD is set",
    )
    reader_role: str = setting(
        "DATABASE_READER_ROLE",
        "--reader-role",
        "tickets_reader",
        "Role of the dashboard, granted only SELECT; created when DATABASE_READER_PASSWORD is set",
    )

    def roles(self) -> list[tuple[str, str, Callable[..., bool], str]]:
        """(role, its password's variable, its grant, who connects as it), after checking
        that the two roles differ: a shared one would get the reader's password and rights."""
        if self.reader_role == self.writer_role:
            raise SettingError(
                "invalid setting reader_role: DATABASE_READER_ROLE must differ from DATABASE_WRITER_ROLE"
                f" (both are {self.writer_role!r}): the dashboard must not connect as the Spark jobs' role"
            )
        return [
            (self.writer_role, "DATABASE_WRITER_PASSWORD", grant_writer, "the Spark jobs"),
            (self.reader_role, "DATABASE_READER_PASSWORD", grant_reader, "the dashboard"),
        ]


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        settings = load(MigrateSettings, argv, prog="python -m core.migrate")
        roles = settings.roles()
        wait_for_database(
            settings.database_url, application_name="migrate", timeout_seconds=settings.wait_seconds
        )
        with connection(settings.database_url, application_name="migrate") as conn:
            applied = apply_migrations(conn)
            for role, password_variable, grant, who in roles:
                if not grant(conn, role, os.environ.get(password_variable)):
                    logger.warning(
                        "role %s does not exist and %s is not set: %s will need another role"
                        " with rights on the tables",
                        role,
                        password_variable,
                        who,
                    )
    except (SettingError, DatabaseUnavailable) as e:
        logger.error("%s", e)
        return 1
    logger.info(
        "schema up to date at %s: %d migration(s) applied now, %d in all",
        mask_url(settings.database_url),
        len(applied),
        len(MIGRATIONS),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
