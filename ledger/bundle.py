"""C2SP tlog-proof: an offline-verifiable proof that an entry is in a log, under a (co)signed checkpoint.

We carry the entry bytes themselves as the `extra` data, so a proof file is self-contained: the verifier
hashes `extra` into the leaf, so the unauthenticated extra data is authenticated by the inclusion proof.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import MalformedError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import Checkpoint, NoteVerifier, open_note, parse_checkpoint

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed tlog-proof."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def encode(self) -> str:
        """The text form (proof lines, blank line, then the checkpoint note verbatim)."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse a tlog-proof; MalformedError on any deviation from the format."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise MalformedError("tlog-proof has no checkpoint after an empty line")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise MalformedError(f"tlog-proof must start with {HEADER!r}")
    pos = 1
    extra = None
    try:
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = base64.b64decode(lines[pos][6:], validate=True)
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise MalformedError("tlog-proof lacks its index line")
        digits = lines[pos][6:]
        if not digits.isdigit() or not digits.isascii() or (digits != "0" and digits.startswith("0")):
            raise MalformedError(f"bad index {digits!r}")
        proof = tuple(base64.b64decode(line, validate=True) for line in lines[pos + 1 :])
    except binascii.Error as exc:
        raise MalformedError(f"bad base64 in tlog-proof: {exc}") from exc
    if any(len(h) != 32 for h in proof):
        raise MalformedError("proof hashes must be 32 bytes")
    return TlogProof(index=int(digits), proof=proof, checkpoint=checkpoint, extra=extra)


def verify_tlog_proof(
    text: str,
    verifiers: Sequence[NoteVerifier],
    *,
    entry: bytes | None = None,
    origin: str | None = None,
) -> tuple[TlogProof, Checkpoint, bytes]:
    """Verify a proof offline; returns it, its checkpoint and the entry. Raises a LedgerError."""
    proof = parse_tlog_proof(text)
    data = entry if entry is not None else proof.extra
    if data is None:
        raise MalformedError("no entry given and the proof carries none")
    note = open_note(proof.checkpoint, verifiers)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise MalformedError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(data), list(proof.proof), checkpoint.root_hash)
    return proof, checkpoint, data
