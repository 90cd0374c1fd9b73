"""Signing keys: generated on first start under DAODI_KEY_DIR, never committed, never logged."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from ledger.note import Ed25519Signer, NoteVerifier
from services.labels.rules import LabelSigner


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


LABEL_KEY_ID = "1"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The log's checkpoint key (named after the log origin) and the label signing key(s) by id `k`."""

    log: Ed25519Signer
    labels: dict[str, Ed25519Signer]

    @classmethod
    def load(cls, key_dir: Path, origin: str) -> KeyRing:
        """Load the keys from `key_dir`, creating missing ones; each label-<k>.ed25519 is a label key."""
        log_key = _load_or_create(key_dir / "log.ed25519", origin)
        _load_or_create(key_dir / f"label-{LABEL_KEY_ID}.ed25519", f"label-{LABEL_KEY_ID}")
        labels = {
            path.stem.removeprefix("label-"): _load_or_create(path, path.stem)
            for path in sorted(key_dir.glob("label-*.ed25519"))
        }
        return cls(log=log_key, labels=labels)

    @property
    def label_signer(self) -> LabelSigner:
        """The key new labels are signed with."""
        return LabelSigner(LABEL_KEY_ID, self.labels[LABEL_KEY_ID].private_key)

    def label_public_keys(self) -> dict[str, str]:
        """Label key id -> base64 raw Ed25519 public key, as /api/v1/keys publishes them."""
        return {k: base64.b64encode(signer.public_key()).decode() for k, signer in self.labels.items()}

    @property
    def log_verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.log.verifier_key())


def gateway_signer(key_dir: Path, name: str = "edge.daodi.dev/gateway") -> Ed25519Signer:
    """The edge gateway's note key (signs readings of `signed_by: gateway` devices), created on first use."""
    try:
        return _load_or_create(key_dir / "gateway.ed25519", name)
    except FileExistsError:
        # Another gateway created it a moment ago.
        return _load_or_create(key_dir / "gateway.ed25519", name)
