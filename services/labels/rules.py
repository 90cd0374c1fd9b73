"""GS1 Digital Link label URIs and their signatures (pure functions, no I/O).

A label URI is `{base}/01/{gtin14}[/10/{lot}][/21/{serial}]?{GS1 attributes}&k={key id}&s={sig}`.
The signature is Ed25519 by label key `k`, base64url without padding, over the UTF-8 path plus `?` plus
the query exactly as printed without the `s` parameter, e.g.
`/01/06901234000019/10/QS24H0007?7007=240612&k=1`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.catalog.rules import gtin_problem

# AI 10 and AI 21 values we issue: the URI-safe subset of GS1 CSET 82, at most 20 characters.
CODE = re.compile(r"^[A-Za-z0-9._-]{1,20}\Z")
_PATH = re.compile(
    r"^/01/(?P<gtin>[0-9]{14})(?:/10/(?P<lot>[A-Za-z0-9._-]{1,20}))?(?:/21/(?P<serial>[A-Za-z0-9._-]{1,20}))?$"
)
_ATTR = re.compile(r"^(?:7007=[0-9]{6}|422=[0-9]{3}|[kK]=[A-Za-z0-9]{1,8})$")


@dataclass(frozen=True, slots=True)
class LabelSigner:
    """The current label key and its id `k`."""

    key_id: str
    key: Ed25519PrivateKey


class LabelError(ValueError):
    """A label URI that does not parse or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class LabelURI:
    """A parsed label URI."""

    base: str
    gtin: str
    lot: str | None
    serial: str | None
    attributes: tuple[tuple[str, str], ...]
    key_id: str
    signature: bytes
    message: str

    @property
    def level(self) -> str:
        """`unit`, `lot` or `product`: the most specific identifier the label carries."""
        return "unit" if self.serial else "lot" if self.lot else "product"

    def attribute(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)


def label_path(gtin: str, lot: str | None = None, serial: str | None = None) -> str:
    """The Digital Link path; LabelError for a bad GTIN or a code outside our character set."""
    problem = gtin_problem(gtin)
    if problem:
        raise LabelError(f"gtin {gtin!r}: {problem}")
    for name, value in (("lot", lot), ("serial", serial)):
        if value is not None and not CODE.match(value):
            raise LabelError(f"{name} {value!r} must be 1-20 characters of A-Z a-z 0-9 . _ -")
    path = f"/01/{gtin}"
    if lot is not None:
        path += f"/10/{lot}"
    if serial is not None:
        path += f"/21/{serial}"
    return path


def sign_label(
    base: str,
    path: str,
    attributes: Sequence[tuple[str, str]],
    key_id: str,
    key: Ed25519PrivateKey,
) -> str:
    """The full signed URI: attributes in the given order, then `k`, then `s` last."""
    query = "&".join(f"{name}={value}" for name, value in [*attributes, ("k", key_id)])
    message = f"{path}?{query}"
    signature = base64.urlsafe_b64encode(key.sign(message.encode())).rstrip(b"=").decode()
    return f"{base.rstrip('/')}{message}&s={signature}"


def parse_label(uri: str) -> LabelURI:
    """Parse a signed label URI (signature not checked); LabelError naming what is wrong."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LabelError("a label is an http(s) URI")
    prefix, marker, rest = parts.path.partition("/01/")
    if not marker:
        raise LabelError("path lacks the GS1 /01/{gtin} segment")
    path = "/01/" + rest
    match = _PATH.match(path)
    if match is None:
        raise LabelError(f"path {path!r} is not /01/{{gtin14}}[/10/{{lot}}][/21/{{serial}}]")
    problem = gtin_problem(match["gtin"])
    if problem:
        raise LabelError(f"gtin: {problem}")
    query = parts.query
    signed, marker, sig_text = query.rpartition("&s=")
    if not marker or not signed or "&" in sig_text:
        raise LabelError("the signature `s` must be the last query parameter")
    pairs = [p.partition("=") for p in signed.split("&")]
    if any(not sep for _, sep, _ in pairs):
        raise LabelError("malformed query")
    if pairs[-1][0] != "k":
        raise LabelError("the key id `k` must come just before `s`")
    for name, _, value in pairs[:-1]:
        if not _ATTR.match(f"{name}={value}"):
            raise LabelError(f"unsupported or malformed attribute {name}={value}")
    try:
        signature = base64.urlsafe_b64decode(sig_text + "=" * (-len(sig_text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise LabelError("signature is not base64url") from exc
    if len(signature) != 64:
        raise LabelError("signature must be 64 bytes (Ed25519)")
    if base64.urlsafe_b64encode(signature).rstrip(b"=").decode() != sig_text:
        # Unused low bits in the last character would otherwise let a label have two spellings.
        raise LabelError("signature is not canonical base64url")
    return LabelURI(
        base=f"{parts.scheme}://{parts.netloc}{prefix}",
        gtin=match["gtin"],
        lot=match["lot"],
        serial=match["serial"],
        attributes=tuple((n, v) for n, _, v in pairs[:-1]),
        key_id=pairs[-1][2],
        signature=signature,
        message=f"{parts.path[len(prefix) :]}?{signed}",
    )


def verify_label(uri: str, keys: Mapping[str, bytes]) -> LabelURI:
    """Parse and check the signature against the published label keys (id -> raw Ed25519 public key)."""
    label = parse_label(uri)
    raw = keys.get(label.key_id)
    if raw is None:
        raise LabelError(f"unknown label key {label.key_id!r}")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(label.signature, label.message.encode())
    except InvalidSignature as exc:
        raise LabelError("label signature does not verify: the URI was altered or forged") from exc
    return label
