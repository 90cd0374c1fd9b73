"""Tests for ledger.tiles against the tessera tlog-tiles example log."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import MalformedError
from ledger.merkle import EMPTY_ROOT, leaf_hash, root_hash
from ledger.note import NoteVerifier, open_note, parse_checkpoint
from ledger.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    decode_bundle,
    encode_bundle,
    entries_path,
    parse_tile_path,
    split_hashes,
    tile_path,
)

STANDARDS = Path(__file__).resolve().parents[1].parent / "shared" / "standards"
EXAMPLE = STANDARDS / "tlog-tiles-example"
EXAMPLE_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"


def test_constants() -> None:
    assert TILE_WIDTH == 1 << TILE_HEIGHT == 256


@pytest.mark.parametrize("size", range(16))
def test_example_log_tiles_match_checkpoint(size: int) -> None:
    note = open_note((EXAMPLE / f"checkpoint.{size}").read_bytes(), [NoteVerifier.from_vkey(EXAMPLE_VKEY)])
    cp = parse_checkpoint(note.text)
    assert cp.size == size
    if size == 0:
        # Empty tiles are never served, so there is nothing to read.
        assert cp.root_hash == EMPTY_ROOT
        return
    hashes = split_hashes((EXAMPLE / tile_path(0, 0, size)).read_bytes())
    entries = decode_bundle((EXAMPLE / entries_path(0, size)).read_bytes())
    assert len(hashes) == len(entries) == size
    assert [leaf_hash(e) for e in entries] == hashes
    assert root_hash(hashes) == cp.root_hash
    assert encode_bundle(entries) == (EXAMPLE / entries_path(0, size)).read_bytes()


def test_example_log_layout_is_what_we_expect() -> None:
    # Every file under tile/ should parse as a canonical path and round trip.
    files = sorted(p.relative_to(EXAMPLE).as_posix() for p in (EXAMPLE / "tile").rglob("*") if p.is_file())
    assert len(files) == 30
    for rel in files:
        level, index, width = parse_tile_path(rel)
        again = entries_path(index, width) if level is None else tile_path(level, index, width)
        assert again == rel


def test_path_known_answers() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(3, 1000) == "tile/3/x001/000"
    assert tile_path(63, 999, 255) == "tile/63/999.p/255"
    assert tile_path(1, 5, TILE_WIDTH) == "tile/1/005"
    assert entries_path(0, 7) == "tile/entries/000.p/7"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert parse_tile_path("tile/0/x001/x234/067") == (0, 1234067, None)
    assert parse_tile_path("tile/entries/x001/x234/067.p/9") == (None, 1234067, 9)
    assert parse_tile_path("tile/12/000") == (12, 0, None)


@pytest.mark.parametrize("index", [0, 1, 999, 1000, 1001, 999_999, 1_000_000, 1234067, 10**18, (1 << 64) - 1])
@pytest.mark.parametrize("width", [None, 1, 128, 255])
def test_path_round_trips(index: int, width: int | None) -> None:
    for level in (0, 1, 63):
        assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    assert parse_tile_path(entries_path(index, width)) == (None, index, width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/0",
        "tile/0/00",
        "tile/0/0000",
        "tile/0/1234",
        "tile/0/x000/001",
        "tile/0/x000/x001/002",
        "tile/0/001/234",
        "tile/0/x001/x234",
        "tile/0/x1/234",
        "tile/0/abc",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/01",
        "tile/0/000.p/",
        "tile/0/000.p/-1",
        "tile/0/000.p",
        "tile/0/000/p/5",
        "tile/0/x001.p/5",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/+1/000",
        "tile//000",
        "tile/0",
        "tile/entries",
        "tile/entry/000",
        "tiles/0/000",
        "/tile/0/000",
        "tile/0/000/",
        "tile/0/\u0661\u0662\u0663",
    ],
)
def test_path_rejections(path: str) -> None:
    with pytest.raises(MalformedError):
        parse_tile_path(path)


def test_path_argument_checks() -> None:
    for args in [(64, 0, None), (-1, 0, None), (0, -1, None), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(MalformedError):
            tile_path(*args)
    with pytest.raises(MalformedError):
        entries_path(0, 0)


def test_bundles() -> None:
    entries = [b"", b"a", b"x" * 65535, bytes(range(256))]
    data = encode_bundle(entries)
    assert data[:3] == b"\x00\x00\x00"
    assert decode_bundle(data) == entries
    assert decode_bundle(b"") == []
    assert encode_bundle([]) == b""
    with pytest.raises(MalformedError):
        encode_bundle([b"x" * 65536])
    for cut in (1, 3, 4, 6, 7, len(data) - 1):
        with pytest.raises(MalformedError):
            decode_bundle(data[:cut])
    with pytest.raises(MalformedError):
        decode_bundle(b"\x00")


def test_split_hashes() -> None:
    assert split_hashes(b"") == []
    assert split_hashes(b"a" * 32 + b"b" * 32) == [b"a" * 32, b"b" * 32]
    for n in (1, 31, 33, 65):
        with pytest.raises(MalformedError):
            split_hashes(b"\x00" * n)
