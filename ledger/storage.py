"""The storage Protocol of a log, and its in-memory implementation.

A store keeps the entries, the level-0 and higher hash tiles (C2SP tlog-tiles layout: tile level L holds the
hashes of tree level 8*L), the head of every lot chain, and the signed checkpoints. Writes happen inside
`transaction()`, which is exclusive across threads (and, for SQL stores, across processes) and durable when
it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Write:
    """Everything one transaction appends: entries from `start`, tiles to upsert, new lot heads."""

    start: int
    entries: list[bytes]
    tiles: dict[tuple[int, int], bytes]
    lot_heads: dict[str, tuple[int, bytes]]


class Transaction(Protocol):
    """A write transaction; `connection` is the underlying DB-API connection (None in memory)."""

    connection: Any

    def size(self) -> int:
        """Committed size as seen under the write lock."""
        ...

    def entry(self, index: int) -> bytes:
        """The entry at index. Requires 0 <= index < size()."""
        ...

    def tile(self, level: int, index: int) -> bytes:
        """Stored hashes of a tile, possibly partial; b"" when absent."""
        ...

    def lot_heads(self, lots: Iterable[str]) -> dict[str, bytes]:
        """Last leaf hash of each known lot among `lots`."""
        ...

    def write(self, write: Write) -> None:
        """Persist one batch."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope whose writes are undone if it raises."""
        ...


class Store(Protocol):
    """Persistent state of one log."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Exclusive write transaction, committed durably on normal exit, rolled back on error."""
        ...

    def size(self) -> int:
        """Number of committed entries."""
        ...

    def entries(self, start: int, end: int) -> list[bytes]:
        """Entries [start, end). Requires 0 <= start <= end <= size()."""
        ...

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Stored (index, entry) rows in [start, end) as they are, gaps included, for auditing."""
        ...

    def tile(self, level: int, index: int) -> bytes:
        """Stored hashes of a tile, possibly partial; b"" when absent."""
        ...

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """Every stored signed checkpoint as (size, note bytes), by size."""
        ...

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        """The stored checkpoint with the largest size."""
        ...

    def put_checkpoint(self, size: int, note: bytes) -> None:
        """Store (or replace, e.g. with more cosignatures) the checkpoint for `size`."""
        ...


@dataclass(slots=True)
class _MemoryData:
    entries: list[bytes] = field(default_factory=list)
    tiles: dict[tuple[int, int], bytes] = field(default_factory=dict)
    lots: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    checkpoints: dict[int, bytes] = field(default_factory=dict)


class _MemoryTransaction:
    connection: Any = None

    def __init__(self, data: _MemoryData) -> None:
        self._data = data
        self._pending: list[Write] = []

    def size(self) -> int:
        return len(self._data.entries) + sum(len(w.entries) for w in self._pending)

    def entry(self, index: int) -> bytes:
        committed = len(self._data.entries)
        if index < committed:
            return self._data.entries[index]
        for w in self._pending:
            if w.start <= index < w.start + len(w.entries):
                return w.entries[index - w.start]
        raise IndexError(index)

    def tile(self, level: int, index: int) -> bytes:
        for w in reversed(self._pending):
            if (level, index) in w.tiles:
                return w.tiles[level, index]
        return self._data.tiles.get((level, index), b"")

    def lot_heads(self, lots: Iterable[str]) -> dict[str, bytes]:
        heads = {lot: head[1] for lot in lots if (head := self._data.lots.get(lot))}
        for w in self._pending:
            heads.update({lot: h for lot, (_, h) in w.lot_heads.items() if lot in heads or lot in lots})
        return heads

    def write(self, write: Write) -> None:
        self._pending.append(write)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        mark = len(self._pending)
        try:
            yield
        except BaseException:
            del self._pending[mark:]
            raise

    def commit(self) -> None:
        for w in self._pending:
            self._data.entries.extend(w.entries)
            self._data.tiles.update(w.tiles)
            self._data.lots.update(w.lot_heads)


class MemoryStore:
    """A Store in process memory, for tests and tools."""

    def __init__(self) -> None:
        self._data = _MemoryData()
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            txn = _MemoryTransaction(self._data)
            yield txn
            txn.commit()

    def size(self) -> int:
        return len(self._data.entries)

    def entries(self, start: int, end: int) -> list[bytes]:
        return self._data.entries[start:end]

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return list(enumerate(self._data.entries[start:end], start))

    def tile(self, level: int, index: int) -> bytes:
        return self._data.tiles.get((level, index), b"")

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        yield from sorted(self._data.checkpoints.items())

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        if not self._data.checkpoints:
            return None
        size = max(self._data.checkpoints)
        return size, self._data.checkpoints[size]

    def put_checkpoint(self, size: int, note: bytes) -> None:
        self._data.checkpoints[size] = note
