"""Use cases of the log inside the platform: append with domain rows, read proofs, build proof bundles."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ledger.bundle import TlogProof
from ledger.checkpointer import read_checkpoint
from ledger.entry import Draft
from ledger.errors import InvalidProofError
from ledger.log import Appended, Log
from ledger.note import Checkpoint, NoteVerifier
from ledger.sqlstore import SQLStore
from services.errors import NotFoundError


def append_entries(session: Session, log: Log, drafts: list[Draft]) -> list[Appended]:
    """Append drafts inside the session's transaction: they commit with the session's rows, or not at all."""
    store = log.store
    assert isinstance(store, SQLStore)
    raw: Any = session.connection().connection.driver_connection
    txn = store.bind(raw)
    results = log.append_in(txn, drafts)
    return [r for r in results if isinstance(r, Appended)]


def latest_checkpoint(log: Log, verifier: NoteVerifier) -> tuple[bytes, Checkpoint]:
    """The latest signed checkpoint; NotFoundError before the first one is signed."""
    stored = log.store.latest_checkpoint()
    if stored is None:
        raise NotFoundError("no checkpoint has been signed yet")
    note = stored[1]
    return note, read_checkpoint(note, [verifier])


def _checkpoint_root(log: Log, size: int, verifier: NoteVerifier) -> bytes | None:
    """Root signed for `size`, when a checkpoint of exactly that size exists."""
    for cp_size, note in _checkpoint_at(log, size):
        if cp_size == size:
            return read_checkpoint(note, [verifier]).root_hash
    return None


def _checkpoint_at(log: Log, size: int) -> list[tuple[int, bytes]]:
    latest = log.store.latest_checkpoint()
    if latest is not None and latest[0] == size:
        return [latest]
    return [(s, n) for s, n in log.store.checkpoints() if s == size]


def inclusion(log: Log, verifier: NoteVerifier, index: int, size: int) -> list[bytes]:
    """Inclusion proof, verified against the signed root for `size` where one exists."""
    return log.inclusion_proof(index, size, root=_checkpoint_root(log, size, verifier))


def consistency(log: Log, verifier: NoteVerifier, old: int, new: int) -> list[bytes]:
    """Consistency proof, verified against the signed roots where they exist."""
    return log.consistency_proof(
        old,
        new,
        old_root=_checkpoint_root(log, old, verifier),
        new_root=_checkpoint_root(log, new, verifier),
    )


def tlog_proof(log: Log, verifier: NoteVerifier, index: int) -> TlogProof:
    """Offline proof bundle for one entry under the latest checkpoint that covers it."""
    note, checkpoint = latest_checkpoint(log, verifier)
    if index < 0:
        raise InvalidProofError(f"index {index} is negative")
    if index >= checkpoint.size:
        raise NotFoundError(
            f"entry {index} is not yet covered by a signed checkpoint (size {checkpoint.size}); retry shortly"
        )
    proof = log.inclusion_proof(index, checkpoint.size, root=checkpoint.root_hash)
    return TlogProof(index=index, proof=tuple(proof), checkpoint=note.decode(), extra=log.entry(index))
