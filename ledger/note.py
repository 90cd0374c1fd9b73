"""C2SP signed notes, tlog checkpoints and cosignature/v1 witness signatures.

Specs: https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint,
https://c2sp.org/tlog-cosignature.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError as BadSignature

from ledger.errors import BadSignatureError, MalformedError

__all__ = [
    "MAX_SIGNATURES",
    "SIG_COSIGNATURE_V1",
    "SIG_ED25519",
    "Checkpoint",
    "CosignatureSigner",
    "Ed25519Signer",
    "Note",
    "NoteVerifier",
    "Signature",
    "cosignature_message",
    "cosignature_timestamp",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_note",
]

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04

MAX_SIGNATURES = 100
KEY_ID_SIZE = 4
_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
"""Control characters a note may not contain (newline is the only one allowed)."""
_BAD_NAME = re.compile(r"[\s+]")
"""What a key name may not contain: "+" and whitespace (`\\s` is exactly `str.isspace`)."""
_SIG_PREFIX = "\u2014 "  # EM DASH, space
_COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_UINT64 = (1 << 64) - 1
# tlog-cosignature caps timestamps so they also fit a signed 64-bit time.
_MAX_TIMESTAMP = (1 << 63) - 1


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Requires text to be canonical standard base64 with padding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedError(f"{what} is not valid base64") from e
    # Non-canonical encodings (stray bits in the last character) would let
    # one signature have many spellings; accept exactly one.
    if _b64encode(raw) != text:
        raise MalformedError(f"{what} is not canonical base64")
    return raw


def _check_name(name: str) -> None:
    """Requires a non-empty key name without whitespace or '+'."""
    if not name or _BAD_NAME.search(name) is not None:
        raise MalformedError(f"invalid key name {name!r}")


def _check_text(text: str) -> None:
    """Requires note text that ends in a newline and has no control characters besides newline."""
    if not text.endswith("\n"):
        raise MalformedError("note text must end with a newline")
    control = _CONTROL.search(text)
    if control is not None:
        raise MalformedError(f"note contains control character {ord(control.group()):#04x}")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Requires 0 <= sig_type < 256; returns SHA-256(name || 0x0A || sig_type || public_key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:KEY_ID_SIZE]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _vkey(name: str, sig_type: int, public_key: bytes) -> str:
    return f"{name}+{key_id(name, sig_type, public_key).hex()}+{_b64encode(bytes([sig_type]) + public_key)}"


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Requires 0 <= timestamp < 2**63; returns the bytes a cosignature/v1 signs."""
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, 4-byte key id and the signature bytes after the key id."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        """Return the signature line including its trailing newline."""
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A note text (ending in newline) and its signatures, in order."""

    text: str
    signatures: tuple[Signature, ...]

    def encode(self) -> str:
        """Requires at least one signature; returns the signed-note wire form."""
        return self.text + "\n" + "".join(s.to_line() for s in self.signatures)


def _verifier_holding_gil() -> Callable[[bytes, bytes, bytes], int] | None:
    """libsodium's crypto_sign_verify_detached(sig, msg, len, public) called through ctypes.PyDLL, which
    keeps the GIL; from the libsodium PyNaCl ships (already initialised by nacl.bindings). None where that
    library does not export it: verification then always goes through PyNaCl."""
    try:
        from nacl import _sodium

        function = ctypes.PyDLL(_sodium.__file__).crypto_sign_verify_detached
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    function.restype = ctypes.c_int

    def verify(sig: bytes, msg: bytes, public: bytes) -> int:
        result: int = function(sig, msg, len(msg), public)
        return result

    return verify


_HOLDING_GIL = _verifier_holding_gil()
_release_gil = True


def release_gil_while_verifying(release: bool) -> bool:
    """Process-wide: whether Ed25519 verification lets other Python threads run meanwhile (the default).

    Verifying in several threads at once needs it. A process that verifies in one thread while its other
    threads have no spare CPU to run on (one gateway per CPU) saves a thread switch per signature by
    keeping the GIL. Returns whether verification now releases the GIL (always, where libsodium's symbol
    is not reachable)."""
    global _release_gil
    _release_gil = release or _HOLDING_GIL is None
    return _release_gil


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted key for one name: Ed25519 (type 0x01) or cosignature/v1 (type 0x04)."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: Ed25519PublicKey
    _raw: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_raw", _raw_public(self.public_key))

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Requires vkey = name+hexkeyid+base64(type||key); MalformedError if it or its key id is bad."""
        # Only the first two "+" separate fields; base64 may contain more.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise MalformedError("verifier key must be name+keyid+key")
        name, hex_id, b64 = parts
        _check_name(name)
        if len(hex_id) != 2 * KEY_ID_SIZE or any(c not in "0123456789abcdefABCDEF" for c in hex_id):
            raise MalformedError(f"verifier key id {hex_id!r} is not 8 hex digits")
        raw = _b64decode(b64, "verifier key")
        if len(raw) != 33 or raw[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise MalformedError("verifier key is not an Ed25519 or cosignature/v1 key")
        sig_type, public = raw[0], raw[1:]
        kid = key_id(name, sig_type, public)
        if kid != bytes.fromhex(hex_id):
            raise MalformedError(f"verifier key id {hex_id} does not match the key (want {kid.hex()})")
        return cls(name, kid, sig_type, Ed25519PublicKey.from_public_bytes(public))

    def vkey(self) -> str:
        """Return the verifier key string this verifier parses from."""
        return _vkey(self.name, self.sig_type, _raw_public(self.public_key))

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return whether sig (the bytes after the key id) signs the note text msg."""
        if self.sig_type == SIG_COSIGNATURE_V1:
            if len(sig) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
                return False
            timestamp = int.from_bytes(sig[:_TIMESTAMP_SIZE], "big")
            if timestamp > _MAX_TIMESTAMP:
                return False
            try:
                text = msg.decode()
            except UnicodeDecodeError:
                return False
            msg, sig = cosignature_message(text, timestamp), sig[_TIMESTAMP_SIZE:]
        elif len(sig) != _ED25519_SIG_SIZE:
            return False
        # libsodium (strict RFC 8032: canonical S, no small-order keys or R) verifies in about two thirds
        # of OpenSSL's time; through PyNaCl the check releases the GIL, through `_HOLDING_GIL` it keeps it.
        if not _release_gil and _HOLDING_GIL is not None:
            return _HOLDING_GIL(sig, msg, self._raw) == 0
        try:
            crypto_sign_open(sig + msg, self._raw)
        except BadSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Ed25519Signer:
    """An Ed25519 note signing key (signature type 0x01) and its key name."""

    name: str
    private_key: Ed25519PrivateKey
    _secret: bytes = field(init=False, repr=False, compare=False)
    _key_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        # libsodium's expanded secret key (signing with it takes about 60% of OpenSSL's time; Ed25519
        # is deterministic, so the signatures are the same) and the key id, both computed once.
        public, secret = crypto_sign_seed_keypair(self.private_bytes())
        object.__setattr__(self, "_secret", secret)
        object.__setattr__(self, "_key_id", key_id(self.name, SIG_ED25519, public))

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        """Requires a valid key name; returns a signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Ed25519Signer:
        """Requires a valid key name and a 32-byte Ed25519 seed."""
        if len(raw) != 32:
            raise MalformedError(f"Ed25519 private key has {len(raw)} bytes, want 32")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Return the 32-byte Ed25519 seed."""
        return self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def public_key(self) -> bytes:
        """Return the 32-byte Ed25519 public key."""
        return _raw_public(self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte signed-note key id."""
        return self._key_id

    def sign(self, msg: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of msg."""
        signed: bytes = crypto_sign(msg, self._secret)
        return signed[:_ED25519_SIG_SIZE]

    def verifier_key(self) -> str:
        """Return name+hexkeyid+base64(0x01||public key)."""
        return _vkey(self.name, SIG_ED25519, self.public_key())

    def verifier(self) -> NoteVerifier:
        """Return the NoteVerifier for this key."""
        return NoteVerifier.from_vkey(self.verifier_key())

    def signature(self, text: str) -> Signature:
        """Requires valid note text; returns its signature line value."""
        _check_text(text)
        return Signature(self.name, self.key_id, self.sign(text.encode()))

    def sign_note(self, text: str) -> str:
        """Requires valid note text (ends in newline, no other control chars); returns the signed note."""
        return Note(text, (self.signature(text),)).encode()


@dataclass(frozen=True, slots=True)
class CosignatureSigner:
    """A witness key producing cosignature/v1 (type 0x04) signatures on checkpoints."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        """Requires a valid key name; returns a cosigner with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> CosignatureSigner:
        """Requires a valid key name and a 32-byte Ed25519 seed."""
        if len(raw) != 32:
            raise MalformedError(f"Ed25519 private key has {len(raw)} bytes, want 32")
        return cls(name, Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """Return the 32-byte Ed25519 seed."""
        return self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def public_key(self) -> bytes:
        """Return the 32-byte Ed25519 public key."""
        return _raw_public(self.private_key.public_key())

    @property
    def key_id(self) -> bytes:
        """Return the 4-byte cosignature/v1 key id."""
        return key_id(self.name, SIG_COSIGNATURE_V1, self.public_key())

    def verifier_key(self) -> str:
        """Return name+hexkeyid+base64(0x04||public key)."""
        return _vkey(self.name, SIG_COSIGNATURE_V1, self.public_key())

    def verifier(self) -> NoteVerifier:
        """Return the NoteVerifier for this key."""
        return NoteVerifier.from_vkey(self.verifier_key())

    def cosign(self, checkpoint_text: str, timestamp: int) -> Signature:
        """Requires a checkpoint body (no signature lines) and 0 <= timestamp < 2**63 (Unix seconds)."""
        parse_checkpoint(checkpoint_text)
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise MalformedError(f"timestamp {timestamp} is outside 0..2**63-1")
        sig = self.private_key.sign(cosignature_message(checkpoint_text, timestamp))
        return Signature(self.name, self.key_id, timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + sig)


def cosignature_timestamp(sig: Signature) -> int:
    """Requires a cosignature/v1 signature (72 bytes after the key id); returns its Unix timestamp."""
    if len(sig.signature) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
        raise MalformedError(f"cosignature has {len(sig.signature)} bytes, want 72")
    return int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")


def parse_note(data: str | bytes) -> Note:
    """Requires a signed note in wire form; returns it unverified or raises MalformedError."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedError("note is not valid UTF-8") from e
    # Lone surrogates can only come from a str argument; they are not UTF-8.
    try:
        data.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedError("note is not valid UTF-8") from e
    _check_text(data)
    # Signature lines are never empty, so the last blank line ends the text.
    split = data.rfind("\n\n")
    if split < 0:
        raise MalformedError("note has no blank line before its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block:
        raise MalformedError("note has no signatures")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedError(f"note has more than {MAX_SIGNATURES} signatures")
    sigs: list[Signature] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise MalformedError("signature line does not start with an em dash and a space")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64:
            raise MalformedError("signature line has no signature")
        _check_name(name)
        raw = _b64decode(b64, "signature")
        if len(raw) <= KEY_ID_SIZE:
            raise MalformedError("signature line is too short")
        sigs.append(Signature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]))
    return Note(text, tuple(sigs))


def open_note(data: str | bytes, verifiers: Iterable[NoteVerifier]) -> Note:
    """Return the note with just its verified signatures; BadSignatureError unless a known key signed it."""
    note = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    msg = note.text.encode()
    verified: list[Signature] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            # Other parties (e.g. witnesses we do not track) may add lines.
            continue
        if not v.verify(msg, sig.signature):
            raise BadSignatureError(f"invalid signature by {sig.name}+{sig.key_id.hex()}")
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise BadSignatureError("note has no signature from a trusted key")
    return Note(note.text, tuple(verified))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedError("checkpoint origin must be one non-empty line")
        if not 0 <= self.size <= _MAX_UINT64:
            raise MalformedError(f"checkpoint size {self.size} is out of range")
        if len(self.root_hash) != 32:
            raise MalformedError(f"checkpoint root has {len(self.root_hash)} bytes, want 32")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise MalformedError("checkpoint extension must be one non-empty line")

    def to_text(self) -> str:
        """Return the checkpoint body, each line ending in a newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Requires a checkpoint body (the note text, not the signatures); raises MalformedError otherwise."""
    _check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise MalformedError("checkpoint origin is empty")
    # Only canonical decimal: no sign, no spaces, no leading zeros.
    if not size_text.isascii() or not size_text.isdigit() or (size_text[0] == "0" and size_text != "0"):
        raise MalformedError(f"checkpoint size {size_text!r} is not a canonical decimal")
    root = _b64decode(root_text, "checkpoint root")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))
