"""Start-up check: the stored log must extend the last signed checkpoint, or we refuse to run."""

from __future__ import annotations

import logging

from ledger.audit import audit
from ledger.checkpointer import read_checkpoint
from ledger.errors import BrokenChainError, LedgerError, StorageError
from ledger.log import Log, load_state
from ledger.merkle import leaf_hash
from ledger.note import NoteVerifier

log = logging.getLogger(__name__)


def recover(target: Log, verifier: NoteVerifier) -> int:
    """Rebuild the right edge from storage and check it against the last checkpoint; returns the size.

    Raises StorageError naming the first bad index when storage and the signed checkpoint disagree.
    """
    store = target.store
    size = store.size()
    try:
        state = load_state(target.read_tile, size)
        if size and state.last_leaf != leaf_hash(store.entries(size - 1, size)[0]):
            raise StorageError(f"entry {size - 1} does not match its leaf hash", size - 1)
        latest = store.latest_checkpoint()
        if latest is not None:
            checkpoint = read_checkpoint(latest[1], [verifier])
            if checkpoint.size > size:
                raise StorageError(
                    f"last checkpoint signs {checkpoint.size} entries but only {size} are stored", size
                )
            if target.root(checkpoint.size) != checkpoint.root_hash:
                raise StorageError("stored tiles do not produce the signed root", None)
    except LedgerError as exc:
        # Find the first bad index with a full audit so the operator knows where to look.
        try:
            audit(store, [verifier])
        except BrokenChainError as broken:
            raise StorageError(
                f"ledger storage does not match its last signed checkpoint at index {broken.index}: {broken}",
                broken.index,
            ) from exc
        raise StorageError(f"ledger storage is inconsistent: {exc}", getattr(exc, "index", None)) from exc
    log.info("ledger recovered: %d entries", size)
    return size
