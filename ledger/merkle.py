"""RFC 9162 Merkle tree hashing, proofs and the right edge of a growing tree.

Leaf indices and tree sizes are 0-based ints; hashes are 32-byte ``bytes``.
A range ``(start, end)`` means the leaves ``[start, end)``; a node
``(level, index)`` means the perfect subtree over
``[index << level, (index + 1) << level)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.errors import InvalidProofError, MalformedError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "RightEdge",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_ranges",
    "range_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()

NodeFn = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Requires n >= 2; returns the largest power of two strictly below n."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH over already-hashed leaves; EMPTY_ROOT when there are none."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # Folding the perfect subtrees from the right gives the same MTH as the
    # recursive definition without recursion depth or slicing copies.
    edge = RightEdge()
    for h in leaf_hashes:
        edge.append(h)
    return edge.root()


def perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """Requires 0 <= start <= end; returns [start, end) as maximal aligned perfect subtrees, left to right."""
    if not 0 <= start <= end:
        raise ValueError(f"invalid range [{start}, {end})")
    out: list[tuple[int, int]] = []
    while start < end:
        # The alignment of start caps the size of the next subtree; the
        # remaining length caps it too.
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def range_hash(start: int, end: int, node: NodeFn) -> bytes:
    """Requires [start, end) to be a subtree RFC 9162 forms (as in proofs); returns its MTH via node()."""
    parts = perfect_ranges(start, end)
    if not parts:
        return EMPTY_ROOT
    h = node(*parts[-1])
    for i in range(len(parts) - 2, -1, -1):
        h = node_hash(node(*parts[i]), h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Requires 0 <= index < size; returns the audit path PATH(index, D[0:size]) as ranges, deepest first."""
    if not 0 <= index < size:
        raise InvalidProofError(f"leaf index {index} is outside a tree of size {size}")
    # Walk down from the root collecting siblings, then reverse: the proof
    # lists them leaf-side first.
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """Requires 0 < old <= new; returns the ranges of PROOF(old, D[0:new]) in proof order."""
    if not 0 < old <= new:
        raise InvalidProofError(f"no consistency proof from size {old} to size {new}")
    out: list[tuple[int, int]] = []
    lo, hi, m = 0, new, old
    # complete is SUBPROOF's flag b: true while the old tree's root is still
    # a root of the subtree we are in, so it need not be sent.
    complete = True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def inclusion_proof(index: int, size: int, node: NodeFn) -> list[bytes]:
    """Requires 0 <= index < size; returns the RFC 9162 audit path using node(level, index)."""
    return [range_hash(s, e, node) for s, e in inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, node: NodeFn) -> list[bytes]:
    """Requires 0 < old <= new; returns the RFC 9162 consistency proof using node(level, index)."""
    return [range_hash(s, e, node) for s, e in consistency_ranges(old, new)]


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """Requires 0 <= index < size and a proof of exactly the right length; returns the implied root."""
    if not 0 <= index < size:
        raise InvalidProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise InvalidProofError(f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
    # RFC 9162 section 2.1.3.2, step by step.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise InvalidProofError(f"inclusion proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(f"inclusion proof is too short ({len(proof)} hashes)")
    return r


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Requires 0 <= index < size; raises InvalidProofError unless proof puts leaf_hash under root."""
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise InvalidProofError(f"inclusion proof for leaf {index} does not match the root of size {size}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Requires 0 <= old <= new; raises InvalidProofError unless proof shows old_root extends to new_root."""
    if old < 0 or new < old:
        raise InvalidProofError(f"cannot prove size {old} is a prefix of size {new}")
    if old == new:
        if proof:
            raise InvalidProofError("sizes are equal, so the consistency proof must be empty")
        # Only one root exists for the empty tree; anything else is a forged
        # "size 0" root even if both sides agree on it.
        if old == 0 and old_root != EMPTY_ROOT:
            raise InvalidProofError("the root of an empty tree must be EMPTY_ROOT")
        if old_root != new_root:
            raise InvalidProofError(f"roots differ for the same size {old}")
        return
    if old == 0:
        # Matches transparency-dev/merkle: a proof from the empty tree says
        # nothing, so asking for one is treated as a caller error.
        raise InvalidProofError("consistency from an empty tree is not provable")
    # RFC 9162 section 2.1.4.2, step by step.
    if not proof:
        raise InvalidProofError("consistency proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError(f"consistency proof is too long ({len(proof)} hashes)")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(f"consistency proof is too short ({len(proof)} hashes)")
    if fr != old_root:
        raise InvalidProofError(f"consistency proof does not match the root of size {old}")
    if sr != new_root:
        raise InvalidProofError(f"consistency proof does not match the root of size {new}")


class RightEdge:
    """Perfect-subtree hashes along the right edge of a growing tree (a compact range [0, size))."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Requires hashes to be the hashes of perfect_ranges(0, size), left to right."""
        if size < 0 or len(hashes) != size.bit_count():
            raise MalformedError(
                f"size {size} needs {max(size, 0).bit_count()} edge hashes, got {len(hashes)}"
            )
        for h in hashes:
            if len(h) != HASH_SIZE:
                raise MalformedError(f"edge hash has {len(h)} bytes, want {HASH_SIZE}")
        self._size = size
        self._hashes: list[bytes] = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        """Return the number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Return the perfect-subtree hashes of perfect_ranges(0, size), left to right."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Requires a 32-byte leaf hash; returns the completed nodes (level, index, hash), leaf first."""
        size = self._size
        hashes = self._hashes
        h = leaf_hash
        done = [(0, size, h)]
        # Each trailing 1 bit of the old size is a perfect subtree that now
        # has a right sibling of equal size, so they merge one level up.
        n = size
        level = 0
        while n & 1:
            h = _sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            n >>= 1
            level += 1
            done.append((level, n, h))
        hashes.append(h)
        self._size = size + 1
        return done

    def push(self, leaf_hash: bytes) -> list[bytes]:
        """Like append, but returns only the hashes: element L is the node at level L, index old_size >> L."""
        hashes = self._hashes
        h = leaf_hash
        done = [h]
        n = self._size
        while n & 1:
            h = _sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            n >>= 1
            done.append(h)
        hashes.append(h)
        self._size += 1
        return done

    def root(self) -> bytes:
        """Return the MTH of the leaves so far; EMPTY_ROOT when size is 0."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        h = hashes[-1]
        for i in range(len(hashes) - 2, -1, -1):
            h = _sha256(_NODE_PREFIX + hashes[i] + h).digest()
        return h

    def __repr__(self) -> str:
        return f"RightEdge(size={self._size})"
