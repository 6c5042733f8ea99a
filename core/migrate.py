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
from core.postgres import DatabaseUnavailable, settings_connection, wait_for_database
from core.settings import DatabaseSettings, SettingError, at_least, load_or_exit, mask_url, setting

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


_ROLE_SETTINGS = {"the Spark jobs": "DATABASE_WRITER_ROLE", "the dashboard": "DATABASE_READER_ROLE"}


def _check_not_owner(conn, roles: list[tuple[str, str, Callable[..., bool], str]]) -> None:
    """Refuse a jobs' or dashboard's role that is the owner migrate connects as: its grant
    would reset the owner's password to that role's."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        (owner,) = cur.fetchone()
    for role, _, _, who in roles:
        if role == owner:
            variable = _ROLE_SETTINGS[who]
            raise SettingError(
                f"invalid setting {variable.lower().removeprefix('database_')}: {variable} must differ from"
                f" the owner that migrate connects as ({owner!r}, the user of DATABASE_URL):"
                f" {who} must not connect as the owner of the tables"
            )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = load_or_exit(MigrateSettings, argv, "python -m core.migrate", logger)
    try:
        roles = settings.roles()
        wait_for_database(
            settings.database_url, application_name="migrate", timeout_seconds=settings.wait_seconds
        )
        with settings_connection(settings, application_name="migrate") as conn:
            _check_not_owner(conn, roles)
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
    except SettingError as e:
        logger.error("%s", e)
        return 2
    except DatabaseUnavailable as e:
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
