"""Errors raised by the ledger library.

LedgerError
 ├── InvalidProofError      a proof does not verify, or its request is out of range
 ├── BrokenChainError       a leaf, hash chain, root or tile does not match its neighbours (has .index)
 ├── BadSignatureError      a signed note or signature line does not verify
 ├── MalformedError         bytes that do not parse as the format they claim to be
 ├── StorageError           the store is unusable or disagrees with its checkpoint (has .index)
 └── PushbackError          the sequencer queue is full; retry later
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises."""


class InvalidProofError(LedgerError):
    """A proof failed to verify, or the request for one is out of range."""


class BrokenChainError(LedgerError):
    """Stored data is inconsistent at a given leaf index."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class BadSignatureError(LedgerError):
    """A signature does not verify, or no trusted key signed the note."""


class MalformedError(LedgerError):
    """Input bytes do not follow the format they claim."""


class StorageError(LedgerError):
    """Storage cannot be used, e.g. it disagrees with the last signed checkpoint."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class PushbackError(LedgerError):
    """The sequencer is full; the caller should back off and retry."""
