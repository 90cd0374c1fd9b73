"""Full independent audit of a log: every leaf, both chains, every tile hash, every checkpoint and root."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.checkpointer import read_checkpoint
from ledger.entry import ChainVerifier
from ledger.errors import BadSignatureError, BrokenChainError, MalformedError
from ledger.merkle import EMPTY_ROOT, RightEdge
from ledger.note import Checkpoint, NoteVerifier

CHUNK = 4096


class AuditSource(Protocol):
    """Where an audit reads a log from: a store, or a server's public read API."""

    def size(self) -> int: ...

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def tile(self, level: int, index: int) -> bytes: ...

    def checkpoints(self) -> Iterator[tuple[int, bytes]]: ...


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What an audit established."""

    size: int
    root: bytes
    checkpoints: int
    lots: int


def _checkpoints(
    source: AuditSource, verifiers: Sequence[NoteVerifier], origin: str | None
) -> list[Checkpoint]:
    checked: list[Checkpoint] = []
    for stored_size, note in source.checkpoints():
        index = max(stored_size - 1, 0)
        try:
            cp = read_checkpoint(note, verifiers)
        except (BadSignatureError, MalformedError) as exc:
            raise BrokenChainError(f"checkpoint of size {stored_size} does not verify: {exc}", index) from exc
        if cp.size != stored_size:
            raise BrokenChainError(f"checkpoint stored under size {stored_size} signs size {cp.size}", index)
        if origin is not None and cp.origin != origin:
            raise BrokenChainError(
                f"checkpoint of size {cp.size} has origin {cp.origin!r}, not {origin!r}", index
            )
        checked.append(cp)
    return checked


class _TileChecker:
    """Compares every complete node at a tile level with the stored tile hashes."""

    def __init__(self, read_tile: Callable[[int, int], bytes]) -> None:
        self._read = read_tile
        self._current: dict[int, tuple[int, bytes]] = {}

    def check(self, level: int, index: int, digest: bytes) -> None:
        tile_level, tile_index, pos = level >> 3, index >> 8, index & 255
        cached = self._current.get(tile_level)
        if cached is None or cached[0] != tile_index:
            cached = (tile_index, self._read(tile_level, tile_index))
            self._current[tile_level] = cached
        stored = cached[1][pos * 32 : pos * 32 + 32]
        if stored != digest:
            first = index << level
            what = f"entry {first}" if level == 0 else f"entries {first}..{((index + 1) << level) - 1}"
            state = "is missing" if not stored else "does not match"
            raise BrokenChainError(f"tile {tile_level}/{tile_index} hash {pos} {state} {what}", first)

    def check_no_extra(self, size: int) -> None:
        """Tiles must not record more hashes than there are entries (a truncated log)."""
        tile_level = 0
        while True:
            at_level = size >> (8 * tile_level)
            stored = self._read(tile_level, at_level >> 8)
            if len(stored) > (at_level & 255) * 32:
                first = at_level << (8 * tile_level)
                raise BrokenChainError(
                    f"tiles record hashes beyond the log's {size} entries: entry {first}", first
                )
            if at_level < 256:
                return
            tile_level += 1


def audit(
    source: AuditSource,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Recompute everything from the entries; BrokenChainError names the first bad index."""
    size = source.size()
    checkpoints = _checkpoints(source, verifiers, origin)
    if checkpoints and checkpoints[-1].size > size:
        raise BrokenChainError(
            f"checkpoint signs {checkpoints[-1].size} entries but the log holds {size}:"
            f" entry {size} is missing",
            size,
        )
    pending = iter(checkpoints)
    due = next(pending, None)
    while due is not None and due.size == 0:
        if due.root_hash != EMPTY_ROOT:
            raise BrokenChainError("checkpoint of size 0 does not sign the empty root", 0)
        due = next(pending, None)
    chain = ChainVerifier()
    edge = RightEdge()
    tiles = _TileChecker(source.tile)
    for start in range(0, size, CHUNK):
        end = min(size, start + CHUNK)
        expected = start
        for index, data in source.entries_with_index(start, end):
            if index != expected:
                raise BrokenChainError(f"entry {expected} is missing", expected)
            _, leaf = chain.add(data)
            for level, node_index, digest in edge.append(leaf):
                if not level & 7:
                    tiles.check(level, node_index, digest)
            expected += 1
            while due is not None and due.size == edge.size:
                if edge.root() != due.root_hash:
                    raise BrokenChainError(
                        f"checkpoint of size {due.size} signs a root the entries do not produce", due.size - 1
                    )
                due = next(pending, None)
        if expected != end:
            raise BrokenChainError(f"entry {expected} is missing", expected)
        if progress is not None:
            progress(end)
    tiles.check_no_extra(size)
    return AuditReport(size=size, root=edge.root(), checkpoints=len(checkpoints), lots=chain.lots)
