"""Signing keys: generated on first start under DAODI_KEY_DIR, never committed, never logged."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from ledger.note import Ed25519Signer, NoteVerifier


def _load_or_create(path: Path, name: str) -> Ed25519Signer:
    if path.exists():
        seed = base64.b64decode(path.read_text().strip())
        return Ed25519Signer.from_private_bytes(name, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = Ed25519Signer.generate(name)
    # Write with 0600 from the start; a key readable by others for a moment is a leaked key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(signer.private_bytes()).decode() + "\n")
    return signer


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The log's checkpoint key (named after the log origin)."""

    log: Ed25519Signer

    @classmethod
    def load(cls, key_dir: Path, origin: str) -> KeyRing:
        """Load the keys from `key_dir`, creating missing ones."""
        return cls(log=_load_or_create(key_dir / "log.ed25519", origin))

    @property
    def log_verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.log.verifier_key())
