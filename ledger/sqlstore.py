"""A Store over any DB-API 2 connection, and its SQLite (sqlite3) dialect.

The SQL is shared; a `Dialect` supplies the differences (placeholders, DDL types, how a write transaction
begins and takes its lock). The PostgreSQL dialect lives in `services/`, which owns that driver.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ledger.errors import StorageError
from ledger.storage import Transaction, Write


class Dialect(Protocol):
    """What differs between SQL servers."""

    @property
    def name(self) -> str:
        """Short name of the server kind, e.g. "sqlite"."""
        ...

    def sql(self, statement: str) -> str:
        """Rewrite a statement written with `?` placeholders."""
        ...

    def schema(self) -> list[str]:
        """DDL statements creating the ledger tables if they do not exist."""
        ...

    def begin(self, conn: Any) -> None:
        """Start a write transaction holding the log's exclusive lock."""
        ...

    def lock(self, conn: Any) -> None:
        """Take the log's exclusive lock inside a transaction someone else began."""
        ...

    def commit(self, conn: Any) -> None: ...

    def rollback(self, conn: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class SQLiteDialect:
    """SQLite through sqlite3 in autocommit mode, with explicit BEGIN IMMEDIATE transactions."""

    name: str = "sqlite"

    def sql(self, statement: str) -> str:
        return statement

    def schema(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS ledger_entries (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS ledger_tiles (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
            " data BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS ledger_lots (lot TEXT PRIMARY KEY, idx INTEGER NOT NULL,"
            " leaf_hash BLOB NOT NULL) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS ledger_checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL)",
        ]

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def lock(self, conn: Any) -> None:
        # A SQLite write transaction is already exclusive once it has written; nothing more to take.
        return None

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")


def connect_sqlite(path: str | Path) -> sqlite3.Connection:
    """Open a SQLite database for the ledger: WAL, synchronous=FULL, autocommit (explicit transactions)."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    # A row rewritten by hand may come back as TEXT that is not UTF-8; keep its bytes so an audit can name it.
    conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SQLTransaction:
    """A write transaction over a DB-API connection (already begun and locked)."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.connection = conn
        self._dialect = dialect
        self._savepoints = 0

    def _one(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        cur = self.connection.cursor()
        cur.execute(self._dialect.sql(statement), params)
        return cur.fetchone()

    def size(self) -> int:
        return _size(self.connection, self._dialect)

    def entry(self, index: int) -> bytes:
        row = self._one("SELECT data FROM ledger_entries WHERE idx = ?", (index,))
        if row is None:
            raise StorageError(f"entry {index} is missing", index)
        return _blob(row[0])

    def tile(self, level: int, index: int) -> bytes:
        return _tile(self.connection, self._dialect, level, index)

    def lot_heads(self, lots: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(lots))
        heads: dict[str, bytes] = {}
        cur = self.connection.cursor()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            cur.execute(
                self._dialect.sql(f"SELECT lot, leaf_hash FROM ledger_lots WHERE lot IN ({marks})"), chunk
            )
            heads.update((lot, _blob(h)) for lot, h in cur.fetchall())
        return heads

    def write(self, write: Write) -> None:
        sql = self._dialect.sql
        cur = self.connection.cursor()
        cur.executemany(
            sql("INSERT INTO ledger_entries (idx, data) VALUES (?, ?)"),
            [(write.start + i, data) for i, data in enumerate(write.entries)],
        )
        if write.tiles:
            cur.executemany(
                sql(
                    "INSERT INTO ledger_tiles (level, idx, data) VALUES (?, ?, ?)"
                    " ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data"
                ),
                [(level, index, data) for (level, index), data in write.tiles.items()],
            )
        if write.lot_heads:
            cur.executemany(
                sql(
                    "INSERT INTO ledger_lots (lot, idx, leaf_hash) VALUES (?, ?, ?)"
                    " ON CONFLICT (lot) DO UPDATE SET idx = excluded.idx, leaf_hash = excluded.leaf_hash"
                ),
                [(lot, idx, h) for lot, (idx, h) in write.lot_heads.items()],
            )

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._savepoints += 1
        name = f"ledger_sp{self._savepoints}"
        cur = self.connection.cursor()
        cur.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cur.execute(f"RELEASE SAVEPOINT {name}")
            raise
        cur.execute(f"RELEASE SAVEPOINT {name}")


def _blob(value: Any) -> bytes:
    """A stored value as bytes; SQLite may hand back TEXT if someone rewrote a row by hand."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


def _size(conn: Any, dialect: Dialect) -> int:
    cur = conn.cursor()
    cur.execute(dialect.sql("SELECT max(idx) FROM ledger_entries"))
    row = cur.fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def _tile(conn: Any, dialect: Dialect, level: int, index: int) -> bytes:
    cur = conn.cursor()
    cur.execute(dialect.sql("SELECT data FROM ledger_tiles WHERE level = ? AND idx = ?"), (level, index))
    row = cur.fetchone()
    return b"" if row is None else _blob(row[0])


class SQLStore:
    """A Store on a SQL server; `connect()` opens a new DB-API connection.

    Reads use one connection per thread; writes use a dedicated connection under a process-wide lock, and
    the dialect's lock makes them exclusive across processes.
    """

    def __init__(self, connect: Callable[[], Any], dialect: Dialect, *, create: bool = True) -> None:
        self._connect = connect
        self.dialect = dialect
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._writer: Any = None
        if create:
            self.create_schema()

    @classmethod
    def sqlite(cls, path: str | Path) -> SQLStore:
        """A store in a SQLite file."""
        return cls(lambda: connect_sqlite(path), SQLiteDialect())

    def create_schema(self) -> None:
        """Create the tables if missing, under the log lock so concurrent starters do not race."""
        conn = self._connect()
        try:
            self.dialect.begin(conn)
            cur = conn.cursor()
            for statement in self.dialect.schema():
                cur.execute(statement)
            self.dialect.commit(conn)
        finally:
            conn.close()

    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            if self.dialect.name != "sqlite":
                conn.autocommit = True
            self._local.conn = conn
        return conn

    def bind(self, conn: Any) -> SQLTransaction:
        """Join a transaction that the caller began on `conn`; takes the log lock. The caller commits."""
        self.dialect.lock(conn)
        return SQLTransaction(conn, self.dialect)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            conn = self._writer
            self.dialect.begin(conn)
            try:
                yield SQLTransaction(conn, self.dialect)
            except BaseException:
                self.dialect.rollback(conn)
                raise
            try:
                self.dialect.commit(conn)
            except BaseException:
                # The connection state is unknown after a failed commit: drop it, never reuse it.
                self._writer = None
                _close_quietly(conn)
                raise

    def size(self) -> int:
        return _size(self._reader(), self.dialect)

    def entries(self, start: int, end: int) -> list[bytes]:
        cur = self._reader().cursor()
        cur.execute(
            self.dialect.sql("SELECT data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx"),
            (start, end),
        )
        return [_blob(row[0]) for row in cur.fetchall()]

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Stored (index, entry) rows in [start, end), gaps included as they are, for auditing."""
        cur = self._reader().cursor()
        cur.execute(
            self.dialect.sql("SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx"),
            (start, end),
        )
        return [(int(i), _blob(d)) for i, d in cur.fetchall()]

    def tile(self, level: int, index: int) -> bytes:
        return _tile(self._reader(), self.dialect, level, index)

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        cur = self._reader().cursor()
        cur.execute(self.dialect.sql("SELECT size, note FROM ledger_checkpoints ORDER BY size"))
        for size, note in cur.fetchall():
            yield int(size), _blob(note)

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        cur = self._reader().cursor()
        cur.execute(self.dialect.sql("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"))
        row = cur.fetchone()
        return None if row is None else (int(row[0]), _blob(row[1]))

    def put_checkpoint(self, size: int, note: bytes) -> None:
        conn = self._connect()
        try:
            self.dialect.begin(conn)
            conn.cursor().execute(
                self.dialect.sql(
                    "INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)"
                    " ON CONFLICT (size) DO UPDATE SET note = excluded.note"
                ),
                (size, note),
            )
            self.dialect.commit(conn)
        finally:
            conn.close()

    def close(self) -> None:
        """Close this thread's reader and the writer."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            _close_quietly(conn)
            self._local.conn = None
        with self._write_lock:
            if self._writer is not None:
                _close_quietly(self._writer)
                self._writer = None


def _close_quietly(conn: Any) -> None:
    # Closing a connection that already failed may fail again; there is nothing left to do about it.
    with contextlib.suppress(Exception):
        conn.close()
