"""Database migrations (Alembic, configured in code so it works from an installed package) and reference data.

`upgrade(settings)` brings the schema to the newest revision and loads the packaged data files (catalog,
pesticides) that are not loaded yet, in one transaction: a half-migrated database is never left behind.
On PostgreSQL an advisory lock serialises processes that start at the same time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlmodel import Session

from services.db import make_engine
from services.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = int.from_bytes(hashlib.sha256(b"daodi.migrations").digest()[:8], "big", signed=True)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations; runs on `connection` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def load_reference_data(session: Session, *, now: datetime) -> None:
    """Load the packaged data files whose versions are not loaded yet."""
    from services.catalog.service import CATALOG_FILE, data_file, load_catalog
    from services.registry.service import load_pesticides

    doc, sha = data_file(CATALOG_FILE)
    load_catalog(session, doc, sha, now=now)
    pesticides, _ = data_file("pesticides.json")
    load_pesticides(session, pesticides)
    session.flush()


def upgrade(settings: Settings, revision: str = "head", *, now: datetime | None = None) -> None:
    """Migrate the database of `settings` to `revision` and load reference data, in one transaction."""
    engine = make_engine(settings.database_url, immediate=True)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            command.upgrade(alembic_config(connection), revision)
            if revision == "head":
                with Session(bind=connection) as session:
                    load_reference_data(session, now=now or datetime.now(UTC))
    finally:
        engine.dispose()


def current(settings: Settings) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(settings.database_url, immediate=False)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
