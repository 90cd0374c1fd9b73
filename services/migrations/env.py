"""Alembic environment: SQLModel metadata of every area; the connection comes from services.migrate.

Every `services/<area>/models.py` is imported so autogenerate sees all tables. The `ledger_*` tables are
created from the ledger dialects' DDL (revision 0001), not from metadata, so autogenerate leaves them alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Any

from alembic import context
from sqlmodel import SQLModel

import services
from services.db import make_engine
from services.settings import Settings

for _area in pkgutil.iter_modules(services.__path__):
    if _area.ispkg and importlib.util.find_spec(f"services.{_area.name}.models") is not None:
        importlib.import_module(f"services.{_area.name}.models")

config = context.config
target_metadata = SQLModel.metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Leave the ledger's own tables out of autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("ledger_"))


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        include_object=include_object,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Run from the alembic command line: the database of the environment's Settings.
    engine = make_engine(Settings().database_url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: the ledger DDL depends on the server")
run_migrations_online()
