"""C2SP tlog-witness: cosign a log's checkpoint only if it is consistent with the last one we cosigned.

The witness keeps, per log origin, the latest checkpoint it cosigned, in its own SQLite file. The check of
the old size and the update are one transaction, so two racing submissions cannot roll the log back.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import BadSignatureError, InvalidProofError, LedgerError, MalformedError
from ledger.merkle import verify_consistency
from ledger.note import Checkpoint, CosignatureSigner, NoteVerifier, open_note, parse_checkpoint, parse_note

MAX_PROOF_LINES = 63


class WitnessError(LedgerError):
    """A refused submission, with the HTTP status tlog-witness prescribes.

    `size` is set only for a stale old size: the latest size the witness cosigned.
    """

    def __init__(self, status: int, message: str, *, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.size = size


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed add-checkpoint request body."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint_note: str


def parse_submission(body: bytes) -> Submission:
    """Parse `old N\\n` + proof lines + `\\n` + checkpoint note; WitnessError(400) when malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessError(400, "request body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessError(400, "request body lacks the empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    digits = first[4:]
    if not first.startswith("old ") or not digits.isdigit() or (digits != "0" and digits.startswith("0")):
        raise WitnessError(400, "first line must be `old <size>`")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    try:
        proof = tuple(base64.b64decode(line, validate=True) for line in lines[1:])
    except binascii.Error as exc:
        raise WitnessError(400, f"bad base64 in proof: {exc}") from exc
    if any(len(h) != 32 for h in proof):
        raise WitnessError(400, "proof hashes must be 32 bytes")
    return Submission(int(digits), proof, note)


def encode_submission(old_size: int, proof: Sequence[bytes], checkpoint_note: str) -> bytes:
    """The add-checkpoint request body."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + checkpoint_note).encode()


class WitnessState:
    """Latest cosigned checkpoint per origin, in a SQLite file (synchronous=FULL)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS witness_logs (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root BLOB NOT NULL, note TEXT NOT NULL, updated REAL NOT NULL)"
        )
        self._lock = threading.Lock()

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """(size, root) of the latest cosigned checkpoint for origin."""
        row = self._conn.execute("SELECT size, root FROM witness_logs WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def advance(self, checkpoint: Checkpoint, note: str, check: Callable[[int, bytes | None], None]) -> None:
        """Atomically: `check(stored_size, stored_root)` then store the checkpoint; durable on return."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT size, root FROM witness_logs WHERE origin = ?", (checkpoint.origin,)
                ).fetchone()
                check(0 if row is None else int(row[0]), None if row is None else bytes(row[1]))
                self._conn.execute(
                    "INSERT INTO witness_logs (origin, size, root, note, updated) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,"
                    " note = excluded.note, updated = excluded.updated",
                    (checkpoint.origin, checkpoint.size, checkpoint.root_hash, note, time.time()),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class Witness:
    """The add-checkpoint logic of a witness over the logs it follows (origin -> trusted log keys)."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[NoteVerifier]],
        state: WitnessState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = dict(logs)
        self.state = state
        self.clock = clock

    def add_checkpoint(self, body: bytes) -> str:
        """Verify and cosign a submission; returns the cosignature line(s). Raises WitnessError."""
        submission = parse_submission(body)
        try:
            unverified = parse_checkpoint(parse_note(submission.checkpoint_note).text)
        except MalformedError as exc:
            raise WitnessError(400, f"malformed checkpoint: {exc}") from exc
        verifiers = self.logs.get(unverified.origin)
        if verifiers is None:
            raise WitnessError(404, f"unknown log origin {unverified.origin!r}")
        try:
            note = open_note(submission.checkpoint_note, verifiers)
        except (BadSignatureError, MalformedError) as exc:
            raise WitnessError(403, f"no trusted signature on the checkpoint: {exc}") from exc
        checkpoint = parse_checkpoint(note.text)
        if submission.old_size > checkpoint.size:
            raise WitnessError(
                400, f"old size {submission.old_size} exceeds checkpoint size {checkpoint.size}"
            )

        def check(stored_size: int, stored_root: bytes | None) -> None:
            if submission.old_size != stored_size:
                raise WitnessError(409, f"latest cosigned size is {stored_size}", size=stored_size)
            if stored_root is None or stored_size == 0:
                if submission.proof:
                    raise WitnessError(422, "proof must be empty when the old size is zero")
                return
            if stored_size == checkpoint.size:
                if stored_root != checkpoint.root_hash:
                    raise WitnessError(409, "same size, different root: the log forked")
                return
            try:
                verify_consistency(
                    stored_size, checkpoint.size, stored_root, checkpoint.root_hash, list(submission.proof)
                )
            except InvalidProofError as exc:
                raise WitnessError(
                    422, f"checkpoint is not consistent with size {stored_size}: {exc}"
                ) from exc

        self.state.advance(checkpoint, submission.checkpoint_note, check)
        signature = self.signer.cosign(note.text, int(self.clock()))
        return signature.to_line()
