"""C2SP tlog-tiles paths, entry bundles and hash tiles (https://c2sp.org/tlog-tiles)."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import MalformedError

__all__ = [
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "decode_bundle",
    "encode_bundle",
    "entries_path",
    "parse_tile_path",
    "split_hashes",
    "tile_path",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF
HASH_SIZE = 32

_DIGITS = frozenset("0123456789")


def _encode_index(index: int) -> str:
    """Requires index >= 0; returns it as 3-digit groups, all but the last prefixed with x."""
    if index < 0:
        raise MalformedError(f"tile index {index} is negative")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    groups.reverse()
    return "/".join(groups)


def _suffix(width: int | None) -> str:
    """Requires width None or 1..256; returns the partial-tile suffix (empty for a full tile)."""
    if width is None or width == TILE_WIDTH:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise MalformedError(f"tile width {width} is outside 1..{TILE_WIDTH}")
    return f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """Requires 0 <= level <= 63, index >= 0, width None or 1..256 (256 = full); returns tile/L/N[.p/W]."""
    if not 0 <= level <= MAX_LEVEL:
        raise MalformedError(f"tile level {level} is outside 0..{MAX_LEVEL}")
    return f"tile/{level}/{_encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """Requires index >= 0, width None or 1..256 (256 means full); returns tile/entries/<N>[.p/<W>]."""
    return f"tile/entries/{_encode_index(index)}{_suffix(width)}"


def _decimal(text: str, what: str) -> int:
    """Requires canonical ASCII decimal (no sign, no leading zeros); returns its value."""
    if not text or not set(text) <= _DIGITS or (len(text) > 1 and text[0] == "0"):
        raise MalformedError(f"{what} {text!r} is not a canonical decimal")
    return int(text)


def parse_tile_path(path: str) -> tuple[int | None, int, int | None]:
    """Requires a canonical tile or bundle path; returns (level or None for entries, index, width or None)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise MalformedError(f"{path!r} is not a tile path")
    level: int | None
    if parts[1] == "entries":
        level = None
    else:
        level = _decimal(parts[1], "tile level")
        if level > MAX_LEVEL:
            raise MalformedError(f"tile level {level} is outside 0..{MAX_LEVEL}")
    groups = parts[2:]
    width: int | None = None
    if len(groups) >= 2 and groups[-2].endswith(".p"):
        width = _decimal(groups[-1], "tile width")
        if not 1 <= width < TILE_WIDTH:
            raise MalformedError(f"tile width {width} is outside 1..{TILE_WIDTH - 1}")
        groups = [*groups[:-2], groups[-2][:-2]]
    index = 0
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        digits = group if last else group[1:]
        if (not last and not group.startswith("x")) or len(digits) != 3 or not set(digits) <= _DIGITS:
            raise MalformedError(f"{path!r} has a bad index element {group!r}")
        index = index * 1000 + int(digits)
    # A leading x000 group would give a second spelling of the same index.
    if len(groups) > 1 and groups[0] == "x000":
        raise MalformedError(f"{path!r} has a zero leading index element")
    return level, index, width


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """Requires each entry to be at most 65535 bytes; returns the uint16-length-prefixed bundle."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise MalformedError(f"entry of {len(entry)} bytes exceeds {MAX_ENTRY_SIZE}")
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """Return the entries of a uint16-length-prefixed bundle; raises MalformedError if truncated."""
    entries: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise MalformedError(f"entry bundle truncated in a length prefix at byte {pos}")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > end:
            raise MalformedError(f"entry bundle truncated: entry {len(entries)} needs {n} bytes")
        entries.append(bytes(data[pos : pos + n]))
        pos += n
    return entries


def split_hashes(tile: bytes) -> list[bytes]:
    """Requires len(tile) to be a multiple of 32; returns its hashes in order."""
    if len(tile) % HASH_SIZE:
        raise MalformedError(f"tile of {len(tile)} bytes is not a whole number of hashes")
    return [bytes(tile[i : i + HASH_SIZE]) for i in range(0, len(tile), HASH_SIZE)]
