"""PostgreSQL dialect of the ledger store: an advisory lock serialises appenders across processes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

# A fixed 64-bit key for pg_advisory_xact_lock, derived from the table name so it is stable and documented.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"daodi.ledger_entries").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class PostgresDialect:
    """PostgreSQL through psycopg 3 (`%s` placeholders, BYTEA, transaction-scoped advisory lock)."""

    name: str = "postgresql"
    lock_key: int = field(default=LOCK_KEY)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def schema(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS ledger_entries (idx BIGINT PRIMARY KEY, data BYTEA NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger_tiles (level INTEGER NOT NULL, idx BIGINT NOT NULL,"
            " data BYTEA NOT NULL, PRIMARY KEY (level, idx))",
            "CREATE TABLE IF NOT EXISTS ledger_lots (lot TEXT PRIMARY KEY, idx BIGINT NOT NULL,"
            " leaf_hash BYTEA NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger_checkpoints (size BIGINT PRIMARY KEY, note BYTEA NOT NULL)",
        ]

    def begin(self, conn: Any) -> None:
        # psycopg opens the transaction implicitly with the first statement.
        self.lock(conn)

    def lock(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key,))

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()
