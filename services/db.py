"""Database wiring: SQLAlchemy engines for the domain, DB-API connections for the ledger store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlmodel import Session, create_engine

from ledger.sqlstore import SQLiteDialect, SQLStore, connect_sqlite
from services.ledger.pgstore import PostgresDialect


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain `postgresql://` means psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise ValueError("the ledger needs a SQLite file, not an in-memory database")
    return Path(url.database)


def make_engine(url: str, *, immediate: bool = True) -> Engine:
    """Engine for the domain tables. On SQLite, `immediate` write transactions avoid upgrade deadlocks."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    _sqlite_path(parsed).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def ledger_connector(url: str) -> tuple[Callable[[], Any], SQLiteDialect | PostgresDialect]:
    """A DB-API connection factory and dialect for the ledger tables in the same database."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        return (lambda: connect_sqlite(path)), SQLiteDialect()
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return (lambda: psycopg.connect(conninfo)), PostgresDialect()


def ledger_store(url: str) -> SQLStore:
    """The ledger store living in the application database."""
    connect, dialect = ledger_connector(url)
    return SQLStore(connect, dialect)


def insert_returning_ids(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows into a table with an integer `id` and return the new ids in row order, in few statements
    (on SQLite the rows get their `id` key set).

    PostgreSQL: multi-row INSERT ... RETURNING, ordered by insertmanyvalues' sentinel. SQLite has no such
    sentinel (SQLAlchemy would send one statement per row), so the ids are allocated after max(id) and sent
    explicitly: the write transaction (BEGIN IMMEDIATE) holds the database's write lock, so no other writer
    takes them meanwhile (were one to, the INSERT fails on the primary key; nothing is overwritten)."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "sqlite":
        start = int(session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1
        ids = list(range(start, start + len(rows)))
        for row, i in zip(rows, ids, strict=True):
            row["id"] = i  # the caller's fresh row dicts: no copies of large documents
        session.execute(insert(table), list(rows))
        return ids
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in session.execute(statement, list(rows)).scalars()]
