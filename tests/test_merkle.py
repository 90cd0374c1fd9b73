"""Tests for ledger.merkle against the transparency-dev/merkle vectors and random trees."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidProofError, MalformedError
from ledger.merkle import (
    EMPTY_ROOT,
    RightEdge,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_ranges,
    range_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

STANDARDS = Path(__file__).resolve().parents[1].parent / "shared" / "standards"
VECTORS = STANDARDS / "merkle-vectors" / "testdata"

# Only inclusion/** and consistency/** are exercised here. The sibling
# subtreeinclusion/ and subtreeconsistency/ folders test proofs for arbitrary
# subtrees (a different API this module does not offer), so they are skipped
# on purpose rather than forgotten.
INCLUSION_FILES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").rglob("*.json"))


def _b64(value: Any) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(data: dict[str, Any]) -> list[bytes]:
    # A few vectors store a JSON null where the proof is empty.
    return [_b64(p) for p in data.get("proof") or []]


def _id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def test_vectors_are_present() -> None:
    # Guards against the parametrized tests silently collecting nothing.
    assert len(INCLUSION_FILES) >= 90
    assert len(CONSISTENCY_FILES) >= 90


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    data = json.loads(path.read_text())
    args = (
        data["leafIdx"],
        data["treeSize"],
        _b64(data.get("leafHash")),
        _proof(data),
        _b64(data.get("root")),
    )
    if data.get("wantErr"):
        with pytest.raises(InvalidProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=_id)
def test_consistency_vector(path: Path) -> None:
    data = json.loads(path.read_text())
    args = (data["size1"], data["size2"], _b64(data.get("root1")), _b64(data.get("root2")), _proof(data))
    if data.get("wantErr"):
        with pytest.raises(InvalidProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_hash_known_answers() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert root_hash([]) == EMPTY_ROOT
    # RFC 6962 test tree of 8 leaves, as used by the transparency-dev vectors.
    leaves = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
    ]
    leaves.append(b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f")
    want = base64.b64decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    assert root_hash([leaf_hash(x) for x in leaves]) == want


def test_perfect_ranges_examples() -> None:
    assert perfect_ranges(0, 0) == []
    assert perfect_ranges(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_ranges(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    assert perfect_ranges(5, 6) == [(0, 5)]
    with pytest.raises(ValueError):
        perfect_ranges(3, 2)


def test_range_errors() -> None:
    for index, size in [(0, 0), (5, 5), (-1, 3)]:
        with pytest.raises(InvalidProofError):
            inclusion_ranges(index, size)
    for old, new in [(0, 0), (0, 4), (5, 4)]:
        with pytest.raises(InvalidProofError):
            consistency_ranges(old, new)
    assert consistency_ranges(4, 4) == []
    with pytest.raises(InvalidProofError, match="outside"):
        root_from_inclusion_proof(3, 3, EMPTY_ROOT, [])
    with pytest.raises(InvalidProofError, match="too short"):
        root_from_inclusion_proof(0, 2, EMPTY_ROOT, [])
    with pytest.raises(InvalidProofError, match="too long"):
        root_from_inclusion_proof(0, 1, EMPTY_ROOT, [EMPTY_ROOT])


def test_right_edge_constructor_checks() -> None:
    with pytest.raises(MalformedError):
        RightEdge(3, [EMPTY_ROOT])
    with pytest.raises(MalformedError):
        RightEdge(1, [b"short"])
    edge = RightEdge()
    assert edge.size == 0
    assert edge.hashes == ()
    assert edge.root() == EMPTY_ROOT


class _Tree:
    """An in-memory tree that answers node(level, index) from its leaves."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int) -> bytes:
        return root_hash(self.levels[0][:size])


def _leaves(n: int, seed: int) -> list[bytes]:
    return [leaf_hash(seed.to_bytes(8, "big") + i.to_bytes(8, "big")) for i in range(n)]


def _flips(proof: list[bytes]) -> list[list[bytes]]:
    out = []
    for i, h in enumerate(proof):
        for j in range(len(h)):
            bad = bytearray(h)
            bad[j] ^= 0x01
            out.append([*proof[:i], bytes(bad), *proof[i + 1 :]])
    return out


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_inclusion_proofs_random(size: int, data: st.DataObject) -> None:
    tree = _Tree(_leaves(size, size))
    root = tree.root(size)
    for index in {0, size - 1, data.draw(st.integers(0, size - 1))}:
        proof = inclusion_proof(index, size, tree.node)
        leaf = tree.node(0, index)
        verify_inclusion(index, size, leaf, proof, root)
        for bad in _flips(proof):
            with pytest.raises(InvalidProofError):
                verify_inclusion(index, size, leaf, bad, root)
        if size > 1:
            with pytest.raises(InvalidProofError):
                verify_inclusion((index + 1) % size, size, leaf, proof, root)


@settings(max_examples=60, deadline=None)
@given(new=st.integers(1, 300), data=st.data())
def test_consistency_proofs_random(new: int, data: st.DataObject) -> None:
    tree = _Tree(_leaves(new, new + 1000))
    new_root = tree.root(new)
    for old in {1, new, data.draw(st.integers(1, new))}:
        old_root = tree.root(old)
        proof = consistency_proof(old, new, tree.node)
        verify_consistency(old, new, old_root, new_root, proof)
        for bad in _flips(proof):
            with pytest.raises(InvalidProofError):
                verify_consistency(old, new, old_root, new_root, bad)
        if old < new:
            with pytest.raises(InvalidProofError):
                verify_consistency(old, new, new_root, new_root, proof)


def test_all_small_proofs_exhaustively() -> None:
    tree = _Tree(_leaves(40, 7))
    roots = [tree.root(n) for n in range(41)]
    for size in range(1, 41):
        for index in range(size):
            verify_inclusion(
                index, size, tree.node(0, index), inclusion_proof(index, size, tree.node), roots[size]
            )
        for old in range(1, size + 1):
            verify_consistency(old, size, roots[old], roots[size], consistency_proof(old, size, tree.node))


def test_range_hash_matches_root_hash() -> None:
    leaves = _leaves(64, 3)
    tree = _Tree(leaves)
    for size in range(1, 65):
        assert range_hash(0, size, tree.node) == root_hash(leaves[:size])
        for start, end in inclusion_ranges(size - 1, size) + consistency_ranges(max(1, size // 3), size):
            assert range_hash(start, end, tree.node) == root_hash(leaves[start:end])


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 300))
def test_right_edge_random(size: int) -> None:
    leaves = _leaves(size, 99)
    tree = _Tree(leaves)
    edge = RightEdge()
    assert edge.root() == EMPTY_ROOT
    for n, h in enumerate(leaves):
        completed = edge.append(h)
        # Exactly the perfect nodes whose last leaf is n are completed.
        want = [(lvl, n >> lvl, tree.node(lvl, n >> lvl)) for lvl in range(10) if (n + 1) % (1 << lvl) == 0]
        assert completed == want
        assert edge.size == n + 1
        assert edge.root() == root_hash(leaves[: n + 1])
        assert edge.hashes == tuple(tree.node(lvl, idx) for lvl, idx in perfect_ranges(0, n + 1))
    resumed = RightEdge(edge.size, edge.hashes)
    assert resumed.root() == edge.root()
    extra = leaf_hash(b"extra")
    assert resumed.append(extra) == edge.append(extra)
    assert resumed.root() == edge.root() == root_hash([*leaves, extra])
