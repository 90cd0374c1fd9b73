"""The log: sequencing entries onto both hash chains, keeping tiles, and serving proofs from storage.

Only complete-subtree hashes are stored (tile level L holds tree level 8L), so any perfect subtree's hash
is one tile read plus at most 127 hashes, and a proof is O(log n) reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.entry import Draft, encode_entry
from ledger.errors import InvalidProofError, StorageError
from ledger.merkle import (
    EMPTY_ROOT,
    RightEdge,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_ranges,
    range_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.storage import Store, Transaction, Write
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH

TILE_BYTES = TILE_WIDTH * 32

Hook = Callable[[Transaction, int], None]
"""Runs inside the append transaction before an entry is chained, with the index it will get.

Raising rejects that entry only: its writes are rolled back to a savepoint and it takes no index.
"""

TileReader = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Appended:
    """An entry that is durable in the log."""

    index: int
    leaf_hash: bytes
    entry: bytes


class _State:
    """Working state of the log's right edge: size, last leaf, compact range, partial tiles per level."""

    __slots__ = ("edge", "last_leaf", "tiles")

    def __init__(self, edge: RightEdge, last_leaf: bytes | None, tiles: list[bytearray]) -> None:
        self.edge = edge
        self.last_leaf = last_leaf
        self.tiles = tiles

    @property
    def size(self) -> int:
        return self.edge.size

    def copy(self) -> _State:
        return _State(
            RightEdge(self.edge.size, self.edge.hashes), self.last_leaf, [bytearray(t) for t in self.tiles]
        )


def subtree_hash(read_tile: TileReader, level: int, index: int) -> bytes:
    """Hash of the perfect subtree at (level, index) from stored tiles; StorageError if a tile is short."""
    tile_level, within = level >> 3, level & 7
    base = index << within
    count = 1 << within
    offset = (base & (TILE_WIDTH - 1)) * 32
    tile = read_tile(tile_level, base >> TILE_HEIGHT)
    if len(tile) < offset + count * 32:
        raise StorageError(
            f"tile {tile_level}/{base >> TILE_HEIGHT} is missing hashes for node {level}/{index}",
            index << level,
        )
    hashes = [tile[i : i + 32] for i in range(offset, offset + count * 32, 32)]
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def load_state(read_tile: TileReader, size: int) -> _State:
    """Rebuild the right edge of a log of `size` entries from its tiles."""
    tiles: list[bytearray] = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        at_level = size >> (TILE_HEIGHT * level)
        width = at_level & (TILE_WIDTH - 1)
        stored = read_tile(level, at_level >> TILE_HEIGHT) if width else b""
        if len(stored) < width * 32:
            raise StorageError(
                f"tile {level}/{at_level >> TILE_HEIGHT} holds {len(stored) // 32} hashes, expected {width}",
                (at_level - width + len(stored) // 32) << (TILE_HEIGHT * level),
            )
        tiles.append(bytearray(stored[: width * 32]))
        level += 1
    hashes = [subtree_hash(read_tile, lvl, idx) for lvl, idx in perfect_ranges(0, size)]
    last = None
    if size:
        last = subtree_hash(read_tile, 0, size - 1)
    return _State(RightEdge(size, tuple(hashes)), last, tiles)


class Log:
    """A Merkle log over a Store. Thread-safe; several processes may append when the store's lock allows."""

    def __init__(self, store: Store, *, tile_cache: int = 2048) -> None:
        """`tile_cache` bounds the tiles whose node hashes stay in memory (about 16 KiB each)."""
        self.store = store
        self._lock = threading.Lock()
        self._known: _State | None = None
        self._pending: _State | None = None
        self._cache: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._cache_size = tile_cache

    # -- appending -------------------------------------------------------------------------------------

    def append(
        self, drafts: Sequence[Draft], hooks: Sequence[Hook | None] | None = None
    ) -> list[Appended | Exception]:
        """Append drafts in one durable transaction; a rejected hook yields its exception in place."""
        with self.store.transaction() as txn:
            results = self.append_in(txn, drafts, hooks)
        self.committed()
        return results

    def append_in(
        self, txn: Transaction, drafts: Sequence[Draft], hooks: Sequence[Hook | None] | None = None
    ) -> list[Appended | Exception]:
        """Append inside a transaction the caller commits (then calls `committed()`) or rolls back."""
        state = self._state_for(txn)
        start = state.size
        heads = txn.lot_heads(d.lot for d in drafts if d.lot is not None)
        new_heads: dict[str, tuple[int, bytes]] = {}
        entries: list[bytes] = []
        results: list[Appended | Exception] = []
        tiles: dict[tuple[int, int], bytes] = {}
        dirty: dict[int, int] = {}
        edge, buffers = state.edge, state.tiles
        if not buffers:
            buffers.append(bytearray())
        level0 = buffers[0]
        for i, draft in enumerate(drafts):
            hook = hooks[i] if hooks is not None else None
            if hook is not None:
                try:
                    with txn.savepoint():
                        hook(txn, edge.size)
                except Exception as exc:
                    results.append(exc)
                    continue
            lot = draft.lot
            lot_prev = heads.get(lot) if lot is not None else None
            data = encode_entry(draft, state.last_leaf, lot_prev)
            leaf = leaf_hash(data)
            index = edge.size
            nodes = edge.push(leaf)
            level0 += leaf
            if len(level0) == TILE_BYTES:
                tiles[0, index >> TILE_HEIGHT] = bytes(level0)
                level0.clear()
                dirty.pop(0, None)
                # A full level-0 tile completed a level-8 node, and maybe higher tile levels too.
                for level in range(TILE_HEIGHT, len(nodes), TILE_HEIGHT):
                    tile_level = level >> 3
                    if tile_level == len(buffers):
                        buffers.append(bytearray())
                    buf = buffers[tile_level]
                    buf += nodes[level]
                    tile_index = index >> (level + TILE_HEIGHT)
                    if len(buf) == TILE_BYTES:
                        tiles[tile_level, tile_index] = bytes(buf)
                        buf.clear()
                        dirty.pop(tile_level, None)
                    else:
                        dirty[tile_level] = tile_index
            else:
                dirty[0] = index >> TILE_HEIGHT
            state.last_leaf = leaf
            if lot is not None:
                heads[lot] = leaf
                new_heads[lot] = (index, leaf)
            entries.append(data)
            results.append(Appended(index, leaf, data))
        for tile_level, tile_index in dirty.items():
            tiles[tile_level, tile_index] = bytes(buffers[tile_level])
        if entries:
            txn.write(Write(start, entries, tiles, new_heads))
        with self._lock:
            self._pending = state
        return results

    def committed(self) -> None:
        """Tell the log that the transaction of the last `append_in` committed."""
        with self._lock:
            if self._pending is not None:
                self._known, self._pending = self._pending, None

    def _state_for(self, txn: Transaction) -> _State:
        size = txn.size()
        last = leaf_hash(txn.entry(size - 1)) if size else None
        with self._lock:
            for candidate in (self._pending, self._known):
                if candidate is not None and candidate.size == size and candidate.last_leaf == last:
                    # A pending state that matches storage was committed, even if nobody said so.
                    self._known, self._pending = candidate, None
                    return candidate.copy()
        state = load_state(txn.tile, size)
        if state.last_leaf != last:
            raise StorageError(f"entry {size - 1} does not match its leaf hash in tile 0", size - 1)
        return state

    # -- reading ---------------------------------------------------------------------------------------

    def _tree(self, tile_level: int, tile_index: int, need: int) -> list[bytes]:
        """Every complete node of a tile, level by level (each level its hashes concatenated).

        Requires need >= 1: the number of level-0 hashes the caller needs. Cached trees stay valid as the
        tile grows, because stored hashes are never rewritten; a tree too short for `need` is re-read.
        """
        key = (tile_level, tile_index)
        with self._lock:
            tree = self._cache.get(key)
            if tree is not None and len(tree[0]) >= need * 32:
                self._cache.move_to_end(key)
                return tree
        data = self.store.tile(tile_level, tile_index)
        tree = [data]
        level = data
        while len(level) >= 64:
            pairs = len(level) // 64
            level = b"".join(
                node_hash(level[i : i + 32], level[i + 32 : i + 64]) for i in range(0, pairs * 64, 64)
            )
            tree.append(level)
        if self._cache_size:
            with self._lock:
                self._cache[key] = tree
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return tree

    def read_tile(self, level: int, index: int) -> bytes:
        """Stored hashes of a tile."""
        with self._lock:
            tree = self._cache.get((level, index))
        if tree is not None and len(tree[0]) == TILE_BYTES:
            return tree[0]
        return self.store.tile(level, index)

    def node(self, level: int, index: int) -> bytes:
        """Hash of a perfect subtree, from the tile that holds it (cached)."""
        tile_level, within = level >> 3, level & 7
        base = index << within
        offset = base & (TILE_WIDTH - 1)
        tree = self._tree(tile_level, base >> TILE_HEIGHT, offset + (1 << within))
        row = tree[within] if within < len(tree) else b""
        start = (offset >> within) * 32
        digest = row[start : start + 32]
        if len(digest) != 32:
            raise StorageError(
                f"tile {tile_level}/{base >> TILE_HEIGHT} is missing hashes for node {level}/{index}",
                index << level,
            )
        return digest

    def size(self) -> int:
        """Committed size."""
        return self.store.size()

    def entry(self, index: int) -> bytes:
        """The entry at index; InvalidProofError if out of range."""
        rows = self.store.entries(index, index + 1) if index >= 0 else []
        if not rows:
            raise InvalidProofError(f"no entry at index {index}")
        return rows[0]

    def root(self, size: int) -> bytes:
        """Root hash of the tree of the first `size` entries. Requires 0 <= size <= committed size."""
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else range_hash(0, size, self.node)

    def inclusion_proof(self, index: int, size: int, *, root: bytes | None = None) -> list[bytes]:
        """Audit path for `index` in the tree of `size`, verified before it is returned."""
        self._check_size(size)
        if not 0 <= index < size:
            raise InvalidProofError(f"index {index} is outside the tree of size {size}")
        proof = inclusion_proof(index, size, self.node)
        leaf = leaf_hash(self.entry(index))
        verify_inclusion(index, size, leaf, proof, root if root is not None else self.root(size))
        return proof

    def consistency_proof(
        self, old: int, new: int, *, old_root: bytes | None = None, new_root: bytes | None = None
    ) -> list[bytes]:
        """Consistency proof between two sizes, verified before it is returned."""
        self._check_size(new)
        if not 0 < old <= new:
            raise InvalidProofError(f"need 0 < old <= new, got old={old} new={new}")
        proof = consistency_proof(old, new, self.node)
        verify_consistency(
            old,
            new,
            old_root if old_root is not None else self.root(old),
            new_root if new_root is not None else self.root(new),
            proof,
        )
        return proof

    def _check_size(self, size: int) -> None:
        if size < 0 or size > self.store.size():
            raise InvalidProofError(f"size {size} is beyond the log's {self.store.size()} entries")
