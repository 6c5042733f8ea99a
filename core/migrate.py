"""Apply the database schema: `python -m core.migrate [--database-url URL]`.

Idempotent: a second run applies nothing. The embedded stack, the tests and the
Helm chart's migrate Job all run this same command.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

from core.logs import configure_logging
from core.migrations import MIGRATIONS, apply_migrations, grant_writer
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


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        settings = load(MigrateSettings, argv, prog="python -m core.migrate")
        wait_for_database(
            settings.database_url, application_name="migrate", timeout_seconds=settings.wait_seconds
        )
        with connection(settings.database_url, application_name="migrate") as conn:
            applied = apply_migrations(conn)
            writer_password = os.environ.get("DATABASE_WRITER_PASSWORD")
            if not grant_writer(conn, settings.writer_role, writer_password):
                logger.warning(
                    "role %s does not exist and DATABASE_WRITER_PASSWORD is not set:"
                    " the jobs will need another role with rights on the tables",
                    settings.writer_role,
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
