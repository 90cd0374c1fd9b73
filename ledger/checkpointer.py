"""Signs checkpoints as the log grows, each only after checking consistency with the previous one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from ledger.errors import LedgerError
from ledger.log import Log
from ledger.note import Checkpoint, Ed25519Signer, NoteVerifier, open_note, parse_checkpoint

log = logging.getLogger(__name__)

Cosigner = Callable[[bytes, bytes | None], bytes]
"""Given a new signed checkpoint and the previous one, return the note with witness cosignatures added."""


def read_checkpoint(note: bytes, verifiers: Sequence[NoteVerifier]) -> Checkpoint:
    """Verify a signed checkpoint note and parse its body."""
    return parse_checkpoint(open_note(note, verifiers).text)


class Checkpointer:
    """Signs a new checkpoint at most every `interval` seconds while the log grows."""

    def __init__(
        self,
        log: Log,
        signer: Ed25519Signer,
        origin: str,
        *,
        interval: float = 0.25,
        cosigner: Cosigner | None = None,
    ) -> None:
        self.log = log
        self.signer = signer
        self.origin = origin
        self.interval = interval
        self.cosigner = cosigner
        self._verifier = NoteVerifier.from_vkey(signer.verifier_key())
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: LedgerError | None = None

    def latest(self) -> tuple[int, bytes, Checkpoint] | None:
        """The latest stored checkpoint, verified."""
        stored = self.log.store.latest_checkpoint()
        if stored is None:
            return None
        size, note = stored
        return size, note, read_checkpoint(note, [self._verifier])

    def sign(self) -> bytes | None:
        """Sign a checkpoint for the current size if it grew; returns the note or None when unchanged."""
        size = self.log.size()
        latest = self.latest()
        if latest is not None and latest[0] >= size:
            return None
        root = self.log.root(size)
        previous_note: bytes | None = None
        if latest is not None:
            old_size, previous_note, previous = latest
            if previous.origin != self.origin:
                raise LedgerError(
                    f"stored checkpoint has origin {previous.origin!r}, expected {self.origin!r}"
                )
            if old_size > 0:
                # Raises InvalidProofError if storage no longer extends what we signed before.
                self.log.consistency_proof(old_size, size, old_root=previous.root_hash, new_root=root)
        text = Checkpoint(self.origin, size, root).to_text()
        note = self.signer.sign_note(text).encode()
        if self.cosigner is not None:
            note = self.cosigner(note, previous_note)
        self.log.store.put_checkpoint(size, note)
        return note

    def notify(self, size: int = 0) -> None:
        """Wake the signer: something was appended."""
        self._wake.set()

    def start(self) -> Checkpointer:
        """Run in a background thread; it also polls, so appends by other processes are covered."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="ledger-checkpointer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after signing what is already committed."""
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.sign()
            except LedgerError as exc:
                # Never sign over an inconsistency: stop and leave the last good checkpoint in place.
                self.failure = exc
                log.critical("refusing to sign a checkpoint: %s", exc)
                return
            except Exception:
                log.exception("checkpoint signing failed; retrying")
        try:
            self.sign()
        except Exception:
            log.exception("final checkpoint signing failed")
