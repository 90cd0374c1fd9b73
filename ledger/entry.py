"""Ledger entries: RFC 8785 canonical JSON with the global chain (`prev`) and the lot chain (`lot_prev`).

An entry is the exact bytes of the canonical JSON object

    {"actor": ..., "body": {...}, "kind": ..., "lot": <chain key or null>,
     "lot_prev": <hex leaf hash or null>, "prev": <hex leaf hash or null>, "time": <RFC 3339>, "v": 1}

`prev` is the leaf hash of the previous entry in the log; `lot_prev` the leaf hash of the previous entry with
the same `lot` (a lot code, or another chain key such as `plot:<code>` for a plot's sensor readings).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.errors import BrokenChainError, MalformedError
from ledger.merkle import leaf_hash

ENTRY_VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# The C string encoder behind json.dumps(ensure_ascii=False): the RFC 8785 escaping of a string.
_encode_string: Callable[[str], str] = json.encoder.encode_basestring
_fast_dumps = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def _es6_number(value: float) -> str:
    """Format a finite float as ECMAScript Number::toString does (RFC 8785 section 3.2.2.3)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-tripping digits; only their layout differs from ECMAScript.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    point = len(int_part) + (int(exp_text) if exp_text else 0) - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    exp = point - 1
    exp_str = f"e+{exp}" if exp >= 0 else f"e-{-exp}"
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + exp_str


def _needs_slow_path(value: Any) -> bool:
    """Check a JSON value; True when the C encoder's output would differ from RFC 8785."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return False
    if kind is dict:
        # Most bodies: plain dicts, mostly of strings; strings need no recursive call.
        slow = False
        for key, item in value.items():
            if type(key) is not str:
                raise MalformedError(f"object key {key!r} is not a string")
            if not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                slow = True
            if type(item) is not str:
                slow = _needs_slow_path(item) or slow
        return slow
    if isinstance(value, str | bool):
        return False
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise MalformedError(f"integer {value} is outside the I-JSON range")
        return False
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedError("NaN and infinities are not JSON")
        return value.is_integer() or "e" in repr(value)
    if isinstance(value, Mapping):
        slow = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedError(f"object key {key!r} is not a string")
            # Python sorts by code point, RFC 8785 by UTF-16 unit: they differ only above the BMP.
            if not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                slow = True
            slow = _needs_slow_path(item) or slow
        return slow
    if isinstance(value, list | tuple):
        return any([_needs_slow_path(item) for item in value])
    raise MalformedError(f"{type(value).__name__} is not a JSON value")


def _slow_encode(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _es6_number(value)
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_encode_string(k) + ":" + _slow_encode(value[k]) for k in keys) + "}"
    return "[" + ",".join(_slow_encode(item) for item in value) + "]"


def _flat_strings(value: dict[Any, Any]) -> str | None:
    """RFC 8785 text of an object of ASCII keys and string values (most entry bodies); None otherwise."""
    parts = []
    for key in sorted(value, key=str):  # for ASCII keys, code point order is UTF-16 order
        item = value[key]
        if type(key) is not str or type(item) is not str or not key.isascii():
            return None
        parts.append(f"{_encode_string(key)}:{_encode_string(item)}")
    return "{" + ",".join(parts) + "}"


def canonical_json(value: Any) -> bytes:
    """Encode a JSON value as RFC 8785 (JCS) bytes; MalformedError for values JSON cannot carry."""
    text = _flat_strings(value) if type(value) is dict else None
    if text is None:
        text = _slow_encode(value) if _needs_slow_path(value) else _fast_dumps(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedError("string contains a lone surrogate") from exc


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 with milliseconds. Requires moment.tzinfo is set."""
    if moment.tzinfo is None:
        raise MalformedError("ledger times must carry a UTC offset")
    text = moment.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry before sequencing: the sequencer adds `prev` and `lot_prev`. `body` is canonical JSON.

    The canonical bytes around the two chain hashes are assembled once, when the draft is made, so the
    sequencer's critical section only splices in the hashes.
    """

    kind: str
    time: str
    actor: str
    body: bytes
    lot: str | None = None
    head: bytes = field(init=False, repr=False, compare=False)
    tail: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            canonical = canonical_json(json.loads(self.body))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedError(f"draft body is not JSON: {exc}") from exc
        if canonical != self.body:
            raise MalformedError("draft body must be RFC 8785 canonical JSON (use Draft.of)")
        self._encode_envelope()

    def _encode_envelope(self) -> None:
        lot = "null" if self.lot is None else _encode_string(self.lot)
        head = (
            f'{{"actor":{_encode_string(self.actor)},"body":{self.body.decode("utf-8")},'
            f'"kind":{_encode_string(self.kind)},"lot":{lot},"lot_prev":'
        )
        object.__setattr__(self, "head", head.encode("utf-8"))
        object.__setattr__(self, "tail", f',"time":{_encode_string(self.time)},"v":1}}'.encode())

    @classmethod
    def of(cls, kind: str, time: datetime | str, actor: str, body: Any, lot: str | None = None) -> Draft:
        """Build a draft from a JSON-able body, canonicalising it."""
        when = rfc3339(time) if isinstance(time, datetime) else time
        if not _RFC3339.match(when):
            raise MalformedError(f"time {when!r} is not RFC 3339")
        if not kind or not actor:
            raise MalformedError("kind and actor are required")
        # The body is canonical by construction: skip the re-check that __init__ does.
        draft = cls.__new__(cls)
        for name, value in (("kind", kind), ("time", when), ("actor", actor), ("lot", lot)):
            object.__setattr__(draft, name, value)
        object.__setattr__(draft, "body", canonical_json(body))
        draft._encode_envelope()
        return draft


def _quoted_hex(value: bytes | None) -> bytes:
    return b"null" if value is None else b'"' + value.hex().encode() + b'"'


def encode_entry(draft: Draft, prev: bytes | None, lot_prev: bytes | None) -> bytes:
    """The canonical entry bytes: the draft's pre-encoded parts with both chain hashes spliced in."""
    if draft.lot is None and lot_prev is not None:
        raise MalformedError("lot_prev requires a lot")
    return b"".join((draft.head, _quoted_hex(lot_prev), b',"prev":', _quoted_hex(prev), draft.tail))


@dataclass(frozen=True, slots=True)
class Entry:
    """A parsed entry."""

    v: int
    kind: str
    time: str
    actor: str
    lot: str | None
    prev: bytes | None
    lot_prev: bytes | None
    body: Any


_FIELDS = frozenset({"v", "kind", "time", "actor", "lot", "prev", "lot_prev", "body"})


def _parse_hash(obj: Mapping[str, Any], name: str) -> bytes | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX64.match(value):
        raise MalformedError(f"{name} must be 64 lowercase hex characters or null")
    return bytes.fromhex(value)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"{name} is not JSON")


def _load_canonical(data: bytes) -> tuple[Any, bool]:
    """Parse JSON and tell whether `data` is its RFC 8785 form, without walking the value in Python.

    When the C encoder reproduces `data` exactly, the bytes are canonical unless a float literal is not in
    ECMAScript form or a key lies above the BMP (where code-point order differs from UTF-16 order); only
    those rare cases, and mismatches, take the exact slow path.
    """
    odd_floats: list[str] = []

    def parse_float(literal: str) -> float:
        value = float(literal)
        # Without an exponent and a trailing ".0", Python's shortest repr is the ECMAScript form.
        plain = "e" not in literal and "E" not in literal and not literal.endswith(".0")
        if not (plain and repr(value) == literal) and _es6_number(value) != literal:
            odd_floats.append(literal)
        return value

    def parse_int(literal: str) -> int:
        value = int(literal)
        if len(literal) > 15 and abs(value) > MAX_SAFE_INTEGER:
            raise MalformedError(f"integer {literal} is outside the I-JSON range")
        return value

    text = data.decode("utf-8")
    obj = json.loads(text, parse_float=parse_float, parse_int=parse_int, parse_constant=_reject_constant)
    if not odd_floats and _fast_dumps(obj) == text and (text.isascii() or not _ASTRAL.search(text)):
        return obj, True
    return obj, canonical_json(obj) == data


def parse_entry(data: bytes, *, check_canonical: bool = True) -> Entry:
    """Parse entry bytes; MalformedError unless they are a well-formed canonical entry."""
    try:
        obj, canonical = _load_canonical(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedError(f"entry is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        raise MalformedError("entry must have exactly the fields " + ", ".join(sorted(_FIELDS)))
    if obj["v"] != ENTRY_VERSION:
        raise MalformedError(f"unsupported entry version {obj['v']!r}")
    for name in ("kind", "time", "actor"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise MalformedError(f"{name} must be a non-empty string")
    if not _RFC3339.match(obj["time"]):
        raise MalformedError("time is not RFC 3339")
    if obj["lot"] is not None and not isinstance(obj["lot"], str):
        raise MalformedError("lot must be a string or null")
    if check_canonical and not canonical:
        raise MalformedError("entry bytes are not RFC 8785 canonical JSON")
    lot_prev = _parse_hash(obj, "lot_prev")
    if obj["lot"] is None and lot_prev is not None:
        raise MalformedError("lot_prev without lot")
    return Entry(
        v=obj["v"],
        kind=obj["kind"],
        time=obj["time"],
        actor=obj["actor"],
        lot=obj["lot"],
        prev=_parse_hash(obj, "prev"),
        lot_prev=lot_prev,
        body=obj["body"],
    )


class ChainVerifier:
    """Checks entries one by one, in index order, against both hash chains."""

    __slots__ = ("_lot_heads", "_prev", "size")

    def __init__(
        self, size: int = 0, prev: bytes | None = None, lot_heads: dict[str, bytes] | None = None
    ) -> None:
        """Start at entry `size`, given the leaf hash of entry size-1 and the lot heads up to it."""
        self.size = size
        self._prev = prev
        self._lot_heads = dict(lot_heads or {})

    @property
    def prev(self) -> bytes | None:
        """Leaf hash of the last entry added."""
        return self._prev

    @property
    def lot_heads(self) -> dict[str, bytes]:
        """Last leaf hash of every lot chain (a copy)."""
        return dict(self._lot_heads)

    @property
    def lots(self) -> int:
        """Number of distinct lot chains seen."""
        return len(self._lot_heads)

    def add(self, data: bytes, *, check_canonical: bool = True) -> tuple[Entry, bytes]:
        """Verify the next entry and return it with its leaf hash; BrokenChainError names its index."""
        index = self.size
        try:
            entry = parse_entry(data, check_canonical=check_canonical)
        except MalformedError as exc:
            raise BrokenChainError(f"entry {index} is malformed: {exc}", index) from exc
        if entry.prev != self._prev:
            raise BrokenChainError(
                f"entry {index}: prev does not match the leaf hash of entry {index - 1}", index
            )
        if entry.lot is not None and entry.lot_prev != self._lot_heads.get(entry.lot):
            raise BrokenChainError(f"entry {index}: lot_prev breaks the chain of lot {entry.lot!r}", index)
        leaf = leaf_hash(data)
        self._prev = leaf
        if entry.lot is not None:
            self._lot_heads[entry.lot] = leaf
        self.size += 1
        return entry, leaf


def verify_chains(entries: Iterable[bytes]) -> int:
    """Verify both hash chains over entries from index 0; return the count."""
    verifier = ChainVerifier()
    for data in entries:
        verifier.add(data)
    return verifier.size
