"""SIGKILL an appending process at random points: acknowledged appends survive, nothing partial shows.

tests/crash_appender.py appends from several threads through a Sequencer and prints one line per
acknowledged append. Each round starts it on the same SQLite file, kills it once it has acknowledged a
random number of appends (plus a random jitter), then checks the file and appends to it from a fresh Log.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from ledger.audit import audit
from ledger.checkpointer import Checkpointer
from ledger.entry import Draft
from ledger.log import Appended, Log, load_state
from ledger.merkle import leaf_hash
from ledger.note import Ed25519Signer
from ledger.sqlstore import SQLStore
from services.recovery import recover

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
APPENDER = Path(__file__).with_name("crash_appender.py")
ORIGIN = "daodi.example/crash-test"
SEED = 9162
ROUNDS = 40
THREADS = 4
LOTS = 5  # as in crash_appender.py
DEADLINE = 30.0


class Acks:
    """Reads "INDEX LEAF_HEX" lines from the appender's stdout in a thread, until EOF."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.items: list[tuple[int, bytes]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            if not line.endswith(b"\n"):
                continue  # cut off by the kill: never fully acknowledged
            index, leaf = line.split()
            with self._changed:
                self.items.append((int(index), bytes.fromhex(leaf.decode())))
                self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` acknowledgements were read."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.items) >= count, timeout)

    def drain(self, timeout: float) -> list[tuple[int, bytes]]:
        """Wait for EOF (the process is dead) and return every acknowledgement."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "appender stdout never reached EOF"
        return self.items


def stays_alive(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to `seconds` for the process to exit on its own (it must not)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def tail(stderr: IO[bytes]) -> str:
    """What the appenders wrote to stderr so far (the end of it)."""
    stderr.seek(0)
    return stderr.read().decode(errors="replace")[-4000:]


def run_round(db: Path, round_no: int, rng: random.Random, stderr: IO[bytes]) -> list[tuple[int, bytes]]:
    """Start the appender, kill it at a random point, and return what it acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, str(APPENDER), str(db), str(round_no), str(THREADS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    try:
        assert proc.stdout is not None
        acks = Acks(proc.stdout)
        if rng.random() < 0.2:
            # Kill early: during start-up, opening the store, or the first batch.
            target, jitter = 0, rng.uniform(0.0, 0.25)
        else:
            target, jitter = rng.randint(1, 150), rng.uniform(0.0, 0.02)
        assert acks.wait_for(target, DEADLINE), f"round {round_no}: fewer than {target} acks in {DEADLINE}s"
        assert stays_alive(proc, jitter), f"round {round_no}: appender exited with {proc.returncode}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(DEADLINE)
    assert proc.returncode == -signal.SIGKILL
    return acks.drain(DEADLINE)


def check_store(db: Path, acks: list[tuple[int, bytes]], signer: Ed25519Signer) -> int:
    """Everything acknowledged is there, nothing partial is visible, the log audits; returns its size."""
    raw = sqlite3.connect(db)
    try:
        count, low, high = raw.execute("SELECT count(*), min(idx), max(idx) FROM ledger_entries").fetchone()
        stored_heads = {lot: (idx, bytes(h)) for lot, idx, h in raw.execute("SELECT * FROM ledger_lots")}
        entries = [bytes(d) for (d,) in raw.execute("SELECT data FROM ledger_entries ORDER BY idx")]
    finally:
        raw.close()
    size = int(count)
    assert count == 0 or (low, high) == (0, count - 1), f"gap: {count} entries in {low}..{high}"

    leaves = [leaf_hash(e) for e in entries]
    for index, leaf in acks:
        assert index < size, f"acknowledged entry {index} is gone (log holds {size})"
        assert leaves[index] == leaf, f"acknowledged entry {index} has another leaf hash"

    # The lot heads were written in the same transactions as the entries.
    heads: dict[str, tuple[int, bytes]] = {}
    for index, data in enumerate(entries):
        lot = json.loads(data)["lot"]
        if lot is not None:
            heads[lot] = (index, leaves[index])
    assert stored_heads == heads

    store = SQLStore.sqlite(db)
    try:
        # The tiles describe exactly `size` entries: no more, no fewer.
        state = load_state(store.tile, size)
        assert state.size == size
        assert state.last_leaf == (leaves[-1] if leaves else None)
        assert len(store.tile(0, size >> 8)) == (size & 255) * 32
        assert len(store.tile(1, size >> 16)) == ((size >> 8) & 255) * 32

        log = Log(store)
        Checkpointer(log, signer, ORIGIN).sign()  # also proves consistency with the previous round's
        report = audit(store, [signer.verifier()], origin=ORIGIN)
        assert report.size == size
        assert recover(Log(store), signer.verifier()) == size
    finally:
        store.close()
    return size


def test_killed_appender_loses_no_acknowledged_entry_and_leaves_no_partial_batch(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "ledger.db"
    # The schema exists before the first kill, which may land before the appender has created it.
    SQLStore.sqlite(db).close()
    signer = Ed25519Signer.generate(ORIGIN)
    size = 0
    acked = 0
    with (tmp_path / "appender.stderr").open("w+b") as stderr:
        for round_no in range(ROUNDS):
            try:
                acks = run_round(db, round_no, rng, stderr)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nappender stderr:\n{tail(stderr)}") from exc
            assert "Traceback" not in tail(stderr), tail(stderr)
            # This round continued from where the log stood: it took only new indices.
            assert all(index >= size for index, _ in acks), f"round {round_no} reused an index below {size}"
            assert len({index for index, _ in acks}) == len(acks)
            new_size = check_store(db, acks, signer)
            assert new_size >= size + len(acks)
            acked += len(acks)

            # A fresh Log over the crashed file appends where the log stands, on every lot chain.
            store = SQLStore.sqlite(db)
            try:
                when = "2026-06-12T08:00:00.000Z"
                drafts = [
                    Draft.of("crash.resume", when, "parent", {"round": round_no}, f"LOT-{lot}")
                    for lot in range(LOTS)
                ]
                appended = Log(store).append(drafts)
            finally:
                store.close()
            assert [a.index for a in appended if isinstance(a, Appended)] == list(
                range(new_size, new_size + LOTS)
            )
            size = new_size + LOTS

    assert acked >= ROUNDS, "the appender hardly acknowledged anything: the kills proved little"
    assert check_store(db, [], signer) == size
