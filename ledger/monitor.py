"""A monitor follows a log from outside: every checkpoint, every entry, both chains, device signatures.

It keeps its own state (right edge, chain heads, the root of every checkpoint it saw) so that a rewrite of
history or a split view (two different trees for one size) is detected and named by index.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ledger.checkpointer import read_checkpoint
from ledger.entry import ChainVerifier
from ledger.errors import BadSignatureError, BrokenChainError, InvalidProofError, LedgerError, MalformedError
from ledger.merkle import RightEdge, verify_consistency
from ledger.note import Checkpoint, NoteVerifier, open_note


class MonitorSource(Protocol):
    """What a monitor reads: checkpoints after a size, entries, and the log's consistency proofs."""

    def checkpoints_after(self, size: int) -> Iterator[tuple[int, bytes]]: ...

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]: ...

    def consistency(self, old: int, new: int) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a regulator must look at: `kind` is stable, `index` the first entry concerned."""

    kind: str
    index: int | None
    message: str

    def to_json(self) -> str:
        return json.dumps(
            {"alert": self.kind, "index": self.index, "message": self.message}, ensure_ascii=False
        )


@dataclass(slots=True)
class MonitorState:
    """What the monitor has verified so far; saved atomically after every step."""

    size: int = 0
    edge: list[bytes] = field(default_factory=list)
    prev: bytes | None = None
    lot_heads: dict[str, bytes] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> MonitorState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        b = base64.b64decode
        return cls(
            size=raw["size"],
            edge=[b(h) for h in raw["edge"]],
            prev=b(raw["prev"]) if raw["prev"] else None,
            lot_heads={k: b(v) for k, v in raw["lot_heads"].items()},
            roots={int(k): b(v) for k, v in raw["roots"].items()},
        )

    def save(self, path: Path) -> None:
        def e(h: bytes) -> str:
            return base64.b64encode(h).decode()

        raw = {
            "size": self.size,
            "edge": [e(h) for h in self.edge],
            "prev": e(self.prev) if self.prev else None,
            "lot_heads": {k: e(v) for k, v in self.lot_heads.items()},
            "roots": {str(k): e(v) for k, v in self.roots.items()},
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, path)


DeviceKeys = Callable[[str], NoteVerifier | None]


def check_sensor_entry(body: Any, device_keys: DeviceKeys) -> str | None:
    """Re-verify the device's signed note carried by a sensor entry; a reason when it fails."""
    if not isinstance(body, dict) or not isinstance(body.get("note"), str):
        return "sensor entry carries no signed note"
    if body.get("signed_by") != "device":
        return None
    verifier = device_keys(str(body.get("device")))
    if verifier is None:
        return f"no published key for device {body.get('device')!r}"
    try:
        open_note(body["note"], [verifier])
    except (BadSignatureError, MalformedError) as exc:
        return f"device signature does not verify: {exc}"
    return None


class Monitor:
    """Follows one log. `poll()` verifies everything new and returns alerts (empty when all is well)."""

    def __init__(
        self,
        source: MonitorSource,
        verifiers: Sequence[NoteVerifier],
        state_path: Path,
        *,
        device_keys: DeviceKeys | None = None,
    ) -> None:
        self.source = source
        self.verifiers = list(verifiers)
        self.state_path = state_path
        self.state = MonitorState.load(state_path)
        self.device_keys = device_keys

    def poll(self) -> list[Alert]:
        """Verify checkpoints and entries published since the last poll."""
        alerts: list[Alert] = []
        for stored_size, note in self.source.checkpoints_after(self.state.size):
            try:
                checkpoint = read_checkpoint(note, self.verifiers)
            except (BadSignatureError, MalformedError) as exc:
                alerts.append(Alert("bad-checkpoint-signature", max(stored_size - 1, 0), str(exc)))
                return alerts
            alert = self.observe(checkpoint)
            if alert is not None:
                alerts.append(alert)
                return alerts
        return alerts

    def observe(self, checkpoint: Checkpoint) -> Alert | None:
        """Check one signed checkpoint (from the log, a witness or a buyer) against what we verified."""
        size = checkpoint.size
        if size in self.state.roots:
            if self.state.roots[size] != checkpoint.root_hash:
                return Alert("split-view", size - 1, f"two different signed roots for size {size}")
            return None
        if size < self.state.size:
            return Alert(
                "unverifiable-old-checkpoint", size - 1, f"size {size} precedes our state and was never seen"
            )
        try:
            chain, edge = self._read_until(size)
        except BrokenChainError as exc:
            return Alert("rewritten-history", exc.index, str(exc))
        except LedgerError as exc:
            return Alert("log-unreachable-or-malformed", self.state.size, str(exc))
        if edge.root() != checkpoint.root_hash:
            return Alert("root-mismatch", size - 1, f"entries do not produce the root signed for size {size}")
        previous = max(self.state.roots) if self.state.roots else 0
        if 0 < previous < size:
            try:
                proof = self.source.consistency(previous, size)
                verify_consistency(previous, size, self.state.roots[previous], checkpoint.root_hash, proof)
            except InvalidProofError as exc:
                return Alert(
                    "inconsistent-proof", previous, f"log's consistency proof {previous}->{size}: {exc}"
                )
        state = self.state
        state.size, state.edge, state.prev, state.lot_heads = (
            edge.size,
            list(edge.hashes),
            chain.prev,
            chain.lot_heads,
        )
        state.roots[size] = checkpoint.root_hash
        state.save(self.state_path)
        return None

    def _read_until(self, size: int) -> tuple[ChainVerifier, RightEdge]:
        """Verify entries from our state up to `size`; nothing is committed to the state here."""
        chain = ChainVerifier(self.state.size, self.state.prev, self.state.lot_heads)
        edge = RightEdge(self.state.size, self.state.edge)
        while edge.size < size:
            end = min(size, edge.size + 4096)
            for index, data in self.source.entries_with_index(edge.size, end):
                if index != edge.size:
                    raise BrokenChainError(f"entry {edge.size} is missing", edge.size)
                entry, leaf = chain.add(data)
                if entry.kind == "sensor.reading" and self.device_keys is not None:
                    reason = check_sensor_entry(entry.body, self.device_keys)
                    if reason is not None:
                        raise BrokenChainError(f"entry {index}: {reason}", index)
                edge.append(leaf)
            if edge.size != end:
                raise BrokenChainError(f"entry {edge.size} is missing", edge.size)
        return chain, edge


class LogSource:
    """A MonitorSource reading a log's store directly (a regulator's replica, or tests)."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def checkpoints_after(self, size: int) -> Iterator[tuple[int, bytes]]:
        return ((s, n) for s, n in self.log.store.checkpoints() if s > size)

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]:
        rows: list[tuple[int, bytes]] = self.log.store.entries_with_index(start, end)
        return rows

    def consistency(self, old: int, new: int) -> list[bytes]:
        proof: list[bytes] = self.log.consistency_proof(old, new)
        return proof
