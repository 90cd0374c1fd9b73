"""`daodi ledger verify`: audit a log from its database or from a server's public read API."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

from ledger.audit import AuditSource, audit
from ledger.errors import BrokenChainError, LedgerError
from ledger.note import NoteVerifier
from ledger.sqlstore import SQLStore
from ledger.tiles import TILE_WIDTH, decode_bundle, entries_path, tile_path


class HTTPSource:
    """Reads a log through its public API: checkpoints, C2SP tiles and entry bundles."""

    def __init__(self, base_url: str, client: Any = None) -> None:
        import httpx

        self._client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=30.0)
        self._checkpoints: list[tuple[int, bytes]] | None = None
        self._bundle: tuple[int, int | None, list[bytes]] | None = None

    def get(self, path: str) -> bytes:
        """GET a path; LedgerError unless the server answers 200."""
        response = self._client.get(path)
        if response.status_code != 200:
            raise LedgerError(f"GET {path}: HTTP {response.status_code}")
        content: bytes = response.content
        return content

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        if self._checkpoints is None:
            found: list[tuple[int, bytes]] = []
            after = -1
            while True:
                page = json.loads(self.get(f"/ledger/checkpoints?after={after}"))
                if not page:
                    break
                found.extend((int(cp["size"]), cp["note"].encode()) for cp in page)
                after = found[-1][0]
            self._checkpoints = found
        yield from self._checkpoints

    def checkpoints_after(self, size: int) -> Iterator[tuple[int, bytes]]:
        """Signed checkpoints with a size above `size`, fetched fresh."""
        self._checkpoints = None
        return ((s, n) for s, n in self.checkpoints() if s > size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        body = json.loads(self.get(f"/ledger/proof/consistency?old={old}&new={new}"))
        return [base64.b64decode(h) for h in body["hashes"]]

    def device_keys(self) -> dict[str, str]:
        """Published device verifier keys by device id."""
        keys: dict[str, str] = json.loads(self.get("/api/v1/keys")).get("devices", {})
        return keys

    def size(self) -> int:
        checkpoints = list(self.checkpoints())
        return checkpoints[-1][0] if checkpoints else 0

    def _width(self, count: int, index: int) -> int | None:
        width = min(TILE_WIDTH, count - index * TILE_WIDTH)
        return None if width == TILE_WIDTH else width

    def entries_with_index(self, start: int, end: int) -> list[tuple[int, bytes]]:
        size = self.size()
        rows: list[tuple[int, bytes]] = []
        for bundle in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
            width = self._width(size, bundle)
            # Keep the last bundle read, keyed by its width too: a partial bundle grows with the log.
            if self._bundle is None or self._bundle[:2] != (bundle, width):
                entries = decode_bundle(self.get("/ledger/" + entries_path(bundle, width)))
                self._bundle = (bundle, width, entries)
            base = bundle * TILE_WIDTH
            rows.extend((base + i, e) for i, e in enumerate(self._bundle[2]) if start <= base + i < end)
        return rows

    def tile(self, level: int, index: int) -> bytes:
        at_level = self.size() >> (8 * level)
        if index * TILE_WIDTH >= at_level:
            return b""
        return self.get("/ledger/" + tile_path(level, index, self._width(at_level, index)))


def monitor_command(*, url: str, state: str, vkey: list[str] | None, once: bool, interval: float) -> int:
    """Follow a log; print one JSON line per alert. With --once, exit 1 if there was any alert."""
    import time
    from pathlib import Path

    from ledger.monitor import Monitor

    source = HTTPSource(url)
    if not vkey:
        print("warning: no --vkey given; trusting the key the server publishes", file=sys.stderr)
        vkey = [line for line in source.get("/ledger/vkey").decode().splitlines() if line]
    verifiers = [NoteVerifier.from_vkey(k) for k in vkey]

    def device_key(device: str) -> NoteVerifier | None:
        text = source.device_keys().get(device)
        return NoteVerifier.from_vkey(text) if text else None

    monitor = Monitor(source, verifiers, Path(state), device_keys=device_key)
    while True:
        alerts = monitor.poll()
        for alert in alerts:
            print(alert.to_json(), flush=True)
        if once:
            print(json.dumps({"ok": not alerts, "verified_size": monitor.state.size}), flush=True)
            return 1 if alerts else 0
        time.sleep(interval)


def verify_command(*, url: str | None, db: str | None, vkey: list[str] | None) -> int:
    """Run the audit and print its outcome; exit status 1 names the first bad index."""
    source: AuditSource
    if url is not None:
        remote = HTTPSource(url)
        if not vkey:
            print("warning: no --vkey given; trusting the key the server publishes", file=sys.stderr)
            vkey = [line for line in remote.get("/ledger/vkey").decode().splitlines() if line]
        source = remote
    else:
        from services.db import ledger_connector

        connect, dialect = ledger_connector(db or "")
        source = SQLStore(connect, dialect, create=False)
        if not vkey:
            from services.keys import KeyRing
            from services.settings import Settings

            settings = Settings()
            vkey = [KeyRing.load(settings.key_dir, settings.log_origin).log.verifier_key()]
    verifiers = [NoteVerifier.from_vkey(k) for k in vkey]
    try:
        report = audit(source, verifiers)
    except BrokenChainError as exc:
        print(f"FAIL at index {exc.index}: {exc}")
        return 1
    print(
        json.dumps(
            {
                "ok": True,
                "size": report.size,
                "root": report.root.hex(),
                "checkpoints": report.checkpoints,
                "lots": report.lots,
            }
        )
    )
    return 0
