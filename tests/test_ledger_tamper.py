"""Tampering with a stored SQLite log: the audit, `daodi ledger verify` and recovery name the first bad index.

One pristine log of 1,300 entries (five full level-0 tiles and a partial one, a level-1 tile of five hashes,
nine lot chains, checkpoints signed at 700 and 1,300) is built once; each case tampers a fresh copy.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.audit import audit
from ledger.checkpointer import Checkpointer
from ledger.entry import Draft
from ledger.errors import BrokenChainError, StorageError
from ledger.log import Log
from ledger.merkle import leaf_hash
from ledger.note import Ed25519Signer
from ledger.sqlstore import SQLStore
from services.recovery import recover

ROOT = Path(__file__).resolve().parents[1]
DAODI = ROOT / ".venv" / "bin" / "daodi"
TIME = "2026-06-12T08:00:00.123+08:00"
ORIGIN = "daodi.example/tamper-test"
SIZE = 1300
EARLY_CHECKPOINT = 700
FORK_AT = 1100
LOTS = 9


def lot_of(i: int) -> str | None:
    return None if i % 4 == 0 else f"LOT-{i % LOTS}"


def draft(i: int, *, actor: str = "org-1", herb: str = "夏枯草") -> Draft:
    return Draft.of("harvest.recorded", TIME, actor, {"herb": herb, "i": i}, lot=lot_of(i))


def build_log(
    path: Path, drafts: list[Draft], signer: Ed25519Signer | None, checkpoints: tuple[int, ...]
) -> None:
    """Append drafts in batches of 100, signing a checkpoint at each size listed in `checkpoints`."""
    store = SQLStore.sqlite(path)
    log = Log(store)
    for start in range(0, len(drafts), 100):
        log.append(drafts[start : start + 100])
        if signer is not None and log.size() in checkpoints:
            Checkpointer(log, signer, ORIGIN).sign()
    store.close()
    # Fold the WAL into the main file so that copying one file copies the whole log.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


@dataclass(frozen=True, slots=True)
class Pristine:
    path: Path
    fork: Path
    unrelated: Path
    signer: Ed25519Signer


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("tamper")
    signer = Ed25519Signer.generate(ORIGIN)
    honest = [draft(i) for i in range(SIZE)]
    build_log(root / "pristine.db", honest, signer, (EARLY_CHECKPOINT, SIZE))
    # A fork sharing the first FORK_AT entries, then diverging (same lots, other bodies); never signed.
    forked = honest[:FORK_AT] + [draft(i, herb="夏枯球") for i in range(FORK_AT, SIZE)]
    build_log(root / "fork.db", forked, None, ())
    # An unrelated log: another actor from the first entry on.
    build_log(root / "unrelated.db", [draft(i, actor="org-9") for i in range(SIZE)], None, ())
    return Pristine(root / "pristine.db", root / "fork.db", root / "unrelated.db", signer)


# -- tampering ---------------------------------------------------------------------------------------------

Mutation = Callable[[sqlite3.Connection, Pristine], None]


def entry(conn: sqlite3.Connection, index: int) -> bytes:
    row = conn.execute("SELECT data FROM ledger_entries WHERE idx = ?", (index,)).fetchone()
    assert row is not None, f"entry {index} is not stored"
    return bytes(row[0])


def put_entry(conn: sqlite3.Connection, index: int, data: bytes) -> None:
    conn.execute("UPDATE ledger_entries SET data = ? WHERE idx = ?", (data, index))


def set_byte(data: bytes, pos: int, value: int) -> bytes:
    assert data[pos] != value
    return data[:pos] + bytes([value]) + data[pos + 1 :]


def other_b64(char: int) -> int:
    """A different base64 character, so the text still decodes."""
    return ord("B") if char == ord("A") else ord("A")


def change_entry_byte(index: int, marker: bytes, offset: int, value: int | None = None) -> Mutation:
    """Change the byte `offset` past `marker` in entry `index` (to `value`, or by flipping its lowest bit)."""

    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        data = entry(conn, index)
        pos = data.index(marker) + offset
        put_entry(conn, index, set_byte(data, pos, data[pos] ^ 1 if value is None else value))

    return mutate


def change_tile_byte(level: int, tile: int, hash_pos: int) -> Mutation:
    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        row = conn.execute(
            "SELECT data FROM ledger_tiles WHERE level = ? AND idx = ?", (level, tile)
        ).fetchone()
        data = bytes(row[0])
        pos = hash_pos * 32 + 17
        assert pos < len(data)
        conn.execute(
            "UPDATE ledger_tiles SET data = ? WHERE level = ? AND idx = ?",
            (set_byte(data, pos, data[pos] ^ 0x40), level, tile),
        )

    return mutate


def change_checkpoint_byte(size: int, line: int, column: int) -> Mutation:
    """Change one base64 character of the checkpoint note: line 2 is the root, line 4 the signature."""

    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        note = bytes(
            conn.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,)).fetchone()[0]
        )
        lines = note.split(b"\n")
        start = sum(len(x) + 1 for x in lines[:line])
        if line == 4:  # "— name base64": skip to the base64 part
            start += lines[line].rindex(b" ") + 1
        pos = start + column
        changed = set_byte(note, pos, other_b64(note[pos]))
        conn.execute("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (changed, size))

    return mutate


def delete_entry(index: int) -> Mutation:
    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        assert conn.execute("DELETE FROM ledger_entries WHERE idx = ?", (index,)).rowcount == 1

    return mutate


def swap_entries(a: int, b: int) -> Mutation:
    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        first, second = entry(conn, a), entry(conn, b)
        put_entry(conn, a, second)
        put_entry(conn, b, first)

    return mutate


def truncate(size: int, *, tiles: bool, drop_checkpoint: bool = False) -> Mutation:
    """Drop entries from `size` on; with `tiles`, also the hashes and lot heads they contributed."""

    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        conn.execute("DELETE FROM ledger_entries WHERE idx >= ?", (size,))
        if drop_checkpoint:
            conn.execute("DELETE FROM ledger_checkpoints WHERE size > ?", (size,))
        if not tiles:
            return
        for level, index, data in conn.execute("SELECT level, idx, data FROM ledger_tiles").fetchall():
            keep = max(0, min(256, (size >> (8 * level)) - 256 * index))
            if keep == 0:
                conn.execute("DELETE FROM ledger_tiles WHERE level = ? AND idx = ?", (level, index))
            elif keep * 32 < len(data):
                conn.execute(
                    "UPDATE ledger_tiles SET data = ? WHERE level = ? AND idx = ?",
                    (bytes(data)[: keep * 32], level, index),
                )
        heads: dict[str, tuple[int, bytes]] = {}
        for index, data in conn.execute("SELECT idx, data FROM ledger_entries ORDER BY idx"):
            lot = json.loads(data)["lot"]
            if lot is not None:
                heads[lot] = (index, leaf_hash(bytes(data)))
        conn.execute("DELETE FROM ledger_lots")
        conn.executemany(
            "INSERT INTO ledger_lots (lot, idx, leaf_hash) VALUES (?, ?, ?)",
            [(lot, i, h) for lot, (i, h) in heads.items()],
        )

    return mutate


def splice(index: int, source: Callable[[Pristine], Path]) -> Mutation:
    """Replace entry `index` with the entry at the same index of another log."""

    def mutate(conn: sqlite3.Connection, pristine: Pristine) -> None:
        other = sqlite3.connect(source(pristine))
        try:
            data = entry(other, index)
        finally:
            other.close()
        assert data != entry(conn, index)
        put_entry(conn, index, data)

    return mutate


def replace_with_fork(conn: sqlite3.Connection, pristine: Pristine) -> None:
    """Swap in the fork's entries, tiles and lot heads wholesale: self-consistent, but not what was signed."""
    conn.execute("ATTACH DATABASE ? AS fork", (str(pristine.fork),))
    for table in ("ledger_entries", "ledger_tiles", "ledger_lots"):
        conn.execute(f"DELETE FROM main.{table}")
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM fork.{table}")
    conn.execute("DETACH DATABASE fork")


def redirect_lot_prev(index: int, to: int) -> Mutation:
    """Point an entry's lot_prev at another entry's leaf hash, keeping its JSON canonical."""

    def mutate(conn: sqlite3.Connection, _: Pristine) -> None:
        data = entry(conn, index)
        old = json.loads(data)["lot_prev"]
        assert old is not None
        new = leaf_hash(entry(conn, to)).hex()
        assert new != old
        put_entry(conn, index, data.replace(old.encode(), new.encode()))

    return mutate


@dataclass(frozen=True, slots=True)
class Tamper:
    name: str
    mutate: Mutation
    index: int
    recover_refuses: bool
    says: str = ""


TAMPERS = [
    # `"prev":null` becomes `"prev":numl`: not JSON.
    Tamper("entry_0_not_json", change_entry_byte(0, b'"prev":', 9), 0, False, "malformed"),
    # `"i":650` becomes `"i":640`: valid canonical JSON on an intact chain; only its leaf hash tells.
    Tamper("entry_middle_value", change_entry_byte(650, b'"i":', 5), 650, False, "tile 0/2"),
    # `"i":1299` becomes `"i": 299`: JSON, but not canonical.
    Tamper("entry_last_not_canonical", change_entry_byte(SIZE - 1, b'"i":', 4, ord(" ")), SIZE - 1, True),
    Tamper("entry_prev_byte", change_entry_byte(901, b'"prev":"', 20), 901, False, "prev"),
    Tamper("tile0_full_tile_leaf_hash", change_tile_byte(0, 2, 100), 2 * 256 + 100, False, "tile 0/2"),
    Tamper("tile0_partial_tile_leaf_hash", change_tile_byte(0, 5, 3), 5 * 256 + 3, True, "tile 0/5"),
    Tamper("tile1_hash", change_tile_byte(1, 0, 2), 2 * 256, True, "tile 1/0"),
    Tamper("tile1_last_hash", change_tile_byte(1, 0, 4), 4 * 256, True, "tile 1/0"),
    Tamper("checkpoint_root_line", change_checkpoint_byte(SIZE, 2, 10), SIZE - 1, True),
    Tamper("checkpoint_signature", change_checkpoint_byte(SIZE, 4, 30), SIZE - 1, True),
    Tamper(
        "early_checkpoint_signature",
        change_checkpoint_byte(EARLY_CHECKPOINT, 4, 40),
        EARLY_CHECKPOINT - 1,
        False,
    ),
    Tamper("delete_middle_entry", delete_entry(650), 650, False, "missing"),
    Tamper("swap_neighbours", swap_entries(400, 401), 400, False),
    Tamper("swap_across_tiles", swap_entries(300, 1000), 300, False),
    Tamper("truncate_entries_only", truncate(SIZE - 30, tiles=False), SIZE - 30, True),
    Tamper("truncate_entries_and_tiles", truncate(SIZE - 30, tiles=True), SIZE - 30, True),
    Tamper("truncate_to_tile_boundary", truncate(SIZE - 20, tiles=True), SIZE - 20, True),
    # With the covering checkpoint gone too, only the leftover tile hashes give the truncation away.
    Tamper(
        "truncate_entries_and_checkpoint",
        truncate(SIZE - 30, tiles=False, drop_checkpoint=True),
        SIZE - 30,
        False,
        "beyond",
    ),
    Tamper("splice_from_unrelated_log", splice(650, lambda p: p.unrelated), 650, False, "prev"),
    # The fork's entry chains onto the same prefix: only the tile hash tells it apart.
    Tamper("splice_from_fork", splice(FORK_AT, lambda p: p.fork), FORK_AT, False, "tile"),
    # Everything agrees with everything except the signed root.
    Tamper("replace_tail_with_fork", replace_with_fork, SIZE - 1, True, "root"),
    Tamper("lot_prev_into_other_lot", redirect_lot_prev(801, 800 - 3), 801, False, "lot_prev"),
]


@pytest.fixture
def copy(pristine: Pristine, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.db"
    shutil.copyfile(pristine.path, path)
    yield path


def tamper_with(path: Path, pristine: Pristine, mutate: Mutation) -> None:
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: each statement is its own write
    try:
        mutate(conn, pristine)
    finally:
        conn.close()


def verify_cli(path: Path, pristine: Pristine) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(DAODI),
            "ledger",
            "verify",
            "--db",
            f"sqlite:///{path}",
            "--vkey",
            pristine.signer.verifier_key(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- the cases ---------------------------------------------------------------------------------------------


def test_untampered_log_passes_audit_cli_and_recovery(pristine: Pristine, copy: Path) -> None:
    store = SQLStore.sqlite(copy)
    report = audit(store, [pristine.signer.verifier()], origin=ORIGIN)
    assert (report.size, report.checkpoints, report.lots) == (SIZE, 2, LOTS)
    assert recover(Log(store), pristine.signer.verifier()) == SIZE
    store.close()

    result = verify_cli(copy, pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {
        "ok": True,
        "size": SIZE,
        "root": report.root.hex(),
        "checkpoints": 2,
        "lots": LOTS,
    }


@pytest.mark.parametrize("case", TAMPERS, ids=[t.name for t in TAMPERS])
def test_tampered_log_is_caught_at_its_first_bad_index(pristine: Pristine, copy: Path, case: Tamper) -> None:
    tamper_with(copy, pristine, case.mutate)
    verifier = pristine.signer.verifier()

    store = SQLStore.sqlite(copy)
    with pytest.raises(BrokenChainError) as broken:
        audit(store, [verifier])
    assert broken.value.index == case.index, str(broken.value)
    assert case.says in str(broken.value)

    if case.recover_refuses:
        with pytest.raises(StorageError) as refused:
            recover(Log(store), verifier)
        assert refused.value.index == case.index, str(refused.value)
        assert f"index {case.index}" in str(refused.value)
    store.close()

    result = verify_cli(copy, pristine)
    assert result.returncode == 1, result.stdout + result.stderr
    found = re.search(r"^FAIL at index (\d+): ", result.stdout, re.MULTILINE)
    assert found is not None, result.stdout + result.stderr
    assert int(found.group(1)) == case.index, result.stdout


# Natural edits in a sqlite3 shell: replace() and || return TEXT, so the row no longer holds a BLOB, and
# the TEXT need not even be valid UTF-8.
SQL_EDITS = {
    "entry_replace_text": (
        """UPDATE ledger_entries SET data = replace(data, '"i":650', '"i":640') WHERE idx = 650""",
        650,
    ),
    # Cut the last byte of 夏 (E5 A4 8F): the TEXT left behind is not UTF-8.
    "entry_replace_invalid_utf8": (
        "UPDATE ledger_entries SET data = replace(data, X'E5A48F', X'E5A4') WHERE idx = 650",
        650,
    ),
    # Overwrite byte 17 of hash 100 in tile 0/2 (SQLite counts from 1).
    "tile_byte_concatenated": (
        "UPDATE ledger_tiles SET data = substr(data, 1, 3217) || X'AA' || substr(data, 3219)"
        " WHERE level = 0 AND idx = 2",
        2 * 256 + 100,
    ),
}


@pytest.mark.parametrize(("statement", "index"), SQL_EDITS.values(), ids=SQL_EDITS.keys())
def test_log_edited_by_hand_in_sql_is_caught_at_its_index(
    pristine: Pristine, copy: Path, statement: str, index: int
) -> None:
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        before = conn.execute(
            "SELECT CAST(data AS BLOB) FROM ledger_tiles WHERE level = 0 AND idx = 2"
        ).fetchone()
        assert conn.execute(statement).rowcount == 1
        after = conn.execute(
            "SELECT CAST(data AS BLOB) FROM ledger_tiles WHERE level = 0 AND idx = 2"
        ).fetchone()
        assert (before != after) == ("ledger_tiles" in statement)
    finally:
        conn.close()

    store = SQLStore.sqlite(copy)
    try:
        with pytest.raises(BrokenChainError) as broken:
            audit(store, [pristine.signer.verifier()])
        assert broken.value.index == index, str(broken.value)
    finally:
        store.close()

    result = verify_cli(copy, pristine)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"FAIL at index {index}: "), result.stdout + result.stderr


def test_cli_runs_without_the_console_script_too(pristine: Pristine, copy: Path) -> None:
    tamper_with(copy, pristine, delete_entry(3))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "ledger",
            "verify",
            "--db",
            f"sqlite:///{copy}",
            "--vkey",
            pristine.signer.verifier_key(),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAIL at index 3: ")
