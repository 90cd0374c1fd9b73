"""The log over its stores: chaining, hooks, group commit, checkpoints, recovery, proofs, tlog-proof."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.audit import audit
from ledger.bundle import TlogProof, parse_tlog_proof, verify_tlog_proof
from ledger.checkpointer import Checkpointer, read_checkpoint
from ledger.entry import ChainVerifier, Draft, _slow_encode, canonical_json, parse_entry
from ledger.errors import (
    BadSignatureError,
    BrokenChainError,
    InvalidProofError,
    MalformedError,
    PushbackError,
)
from ledger.log import Appended, Log
from ledger.merkle import leaf_hash, root_hash, verify_consistency, verify_inclusion
from ledger.note import Ed25519Signer
from ledger.sequencer import Sequencer
from ledger.sqlstore import SQLStore
from ledger.storage import MemoryStore, Store

ROOT = Path(__file__).resolve().parents[1]
TIME = "2026-06-12T08:00:00.123+08:00"


def draft(i: int, lot: str | None = None) -> Draft:
    return Draft.of("test.event", TIME, "org-1", {"i": i, "note": "夏枯草"}, lot=lot)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLStore.sqlite(tmp_path / "ledger.db")


def test_ledger_imports_only_the_standard_library_and_cryptography() -> None:
    code = (
        "import sys, ledger.audit, ledger.bundle, ledger.checkpointer, ledger.log, ledger.sequencer, "
        "ledger.sqlstore, ledger.tiles\n"
        "bad = [m for m in ('fastapi', 'sqlmodel', 'sqlalchemy', 'paho', 'qrcode', 'pydantic', 'services')"
        " if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (123456789012345680000.0, "123456789012345680000"),
        (4.5, "4.5"),
        (2e-3, "0.002"),
        (-1.5e300, "-1.5e+300"),
    ],
)
def test_canonical_json_formats_numbers_as_ecmascript(value: float, expected: str) -> None:
    assert canonical_json(value).decode() == expected


def test_canonical_json_sorts_keys_by_utf16_and_escapes_minimally() -> None:
    value = {"\U0001f600": 1, "\ufb33": 2, "b": '\u2028\n"\\/', "a": [True, None]}
    assert (
        canonical_json(value)
        == '{"a":[true,null],"b":"\u2028\\n\\"\\\\/","\U0001f600":1,"\ufb33":2}'.encode()
    )


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=6),
        st.one_of(st.text(max_size=12), st.integers(-5, 5), st.none(), st.lists(st.text(max_size=3))),
        max_size=8,
    )
)
def test_canonical_json_of_objects_matches_the_reference_encoder(value: dict[str, object]) -> None:
    # Flat objects of strings take a shortcut; every object must come out as the spelled-out RFC 8785.
    try:
        expected = _slow_encode(value).encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(MalformedError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), 2**60, {1: "x"}, {"x": object()}, {"a": "\ud800"}]
)
def test_canonical_json_rejects_values_json_cannot_carry(bad: object) -> None:
    with pytest.raises(MalformedError):
        canonical_json(bad)


def test_entries_carry_both_chains_as_canonical_json(store: Store) -> None:
    log = Log(store)
    results = log.append([draft(0, "QS24H0001"), draft(1), draft(2, "QS24H0001"), draft(3, "QS24H0002")])
    entries = [r.entry for r in results if isinstance(r, Appended)]
    parsed = [parse_entry(e) for e in entries]
    assert parsed[0].prev is None and parsed[0].lot_prev is None
    assert parsed[1].prev == leaf_hash(entries[0]) and parsed[1].lot is None and parsed[1].lot_prev is None
    assert parsed[2].lot_prev == leaf_hash(entries[0])
    assert parsed[3].lot_prev is None
    assert json.loads(entries[0])["v"] == 1
    assert ChainVerifier().add(entries[0])[1] == leaf_hash(entries[0])


def test_chain_verifier_names_the_entry_whose_prev_is_wrong() -> None:
    store = MemoryStore()
    log = Log(store)
    log.append([draft(i, "L1") for i in range(5)])
    entries = store.entries(0, 5)
    entries[3], entries[2] = entries[2], entries[3]
    verifier = ChainVerifier()
    with pytest.raises(BrokenChainError) as caught:
        for e in entries:
            verifier.add(e)
    assert caught.value.index == 2


def test_a_rejected_hook_leaves_no_dangling_prev(store: Store) -> None:
    log = Log(store)

    def reject(_txn: object, _index: int) -> None:
        raise ValueError("duplicate reading")

    results = log.append([draft(0, "L"), draft(1, "L"), draft(2, "L")], [None, reject, None])
    assert isinstance(results[1], ValueError)
    first, third = results[0], results[2]
    assert isinstance(first, Appended) and isinstance(third, Appended)
    assert third.index == 1
    assert parse_entry(third.entry).prev == first.leaf_hash
    assert parse_entry(third.entry).lot_prev == first.leaf_hash
    assert audit(store, []).size == 2


def test_proofs_from_storage_verify_against_the_root_at_every_size(store: Store) -> None:
    log = Log(store)
    leaves: list[bytes] = []
    for start in range(0, 700, 100):
        for r in log.append([draft(i) for i in range(start, start + 100)]):
            assert isinstance(r, Appended)
            leaves.append(r.leaf_hash)
    for size in (1, 2, 3, 255, 256, 257, 511, 512, 513, 700):
        root = root_hash(leaves[:size])
        assert log.root(size) == root
        for index in {0, size // 2, size - 1}:
            verify_inclusion(index, size, leaves[index], log.inclusion_proof(index, size), root)
        for old in {1, size // 3 or 1, size}:
            verify_consistency(old, size, root_hash(leaves[:old]), root, log.consistency_proof(old, size))


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0), (0, 999), (3, -2)])
def test_out_of_range_inclusion_requests_are_invalid(index: int, size: int) -> None:
    log = Log(MemoryStore())
    log.append([draft(i) for i in range(10)])
    with pytest.raises(InvalidProofError):
        log.inclusion_proof(index, size)


@pytest.mark.parametrize(("old", "new"), [(0, 5), (6, 5), (1, 11), (-1, 3)])
def test_out_of_range_consistency_requests_are_invalid(old: int, new: int) -> None:
    log = Log(MemoryStore())
    log.append([draft(i) for i in range(10)])
    with pytest.raises(InvalidProofError):
        log.consistency_proof(old, new)


def test_sequencer_serialises_concurrent_callers_into_one_chain(tmp_path: Path) -> None:
    store = SQLStore.sqlite(tmp_path / "ledger.db")
    log = Log(store)
    acked: list[Appended] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        for i in range(40):
            result = sequencer.append(draft(w * 1000 + i, f"L{w}"))
            with lock:
                acked.append(result)

    with Sequencer(log, max_delay=0.005) as sequencer:
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(a.index for a in acked) == list(range(320))
    assert sequencer.batches < 320  # group commit actually grouped
    stored = store.entries(0, 320)
    assert all(stored[a.index] == a.entry for a in acked)
    assert audit(store, []).lots == 8


def test_sequencer_pushes_back_when_its_queue_is_full() -> None:
    gate = threading.Event()

    class SlowStore(MemoryStore):
        def transaction(self):  # type: ignore[no-untyped-def]
            gate.wait(10)
            return super().transaction()

    sequencer = Sequencer(Log(SlowStore()), max_queue=4, max_batch=1).start()
    try:
        futures = []
        with pytest.raises(PushbackError):
            for i in range(50):
                futures.append(sequencer.submit(draft(i)))
        assert 4 <= len(futures) <= 6
    finally:
        gate.set()
        sequencer.stop()
    assert all(f.result(5).index >= 0 for f in futures)


def test_sequencer_fails_every_caller_of_a_batch_that_cannot_commit() -> None:
    class BrokenStore(MemoryStore):
        def transaction(self):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

    with Sequencer(Log(BrokenStore())) as sequencer:
        futures = [sequencer.submit(draft(i)) for i in range(3)]
        for f in futures:
            with pytest.raises(OSError):
                f.result(5)


def test_checkpointer_signs_after_appends_and_verifies(store: Store) -> None:
    signer = Ed25519Signer.generate("example.test/log")
    log = Log(store)
    checkpointer = Checkpointer(log, signer, "example.test/log", interval=0.02).start()
    try:
        log.append([draft(i) for i in range(300)])
        checkpointer.notify()
        cp = _wait_for_checkpoint(store, signer, 300)
        assert cp.root_hash == log.root(300)
        log.append([draft(i) for i in range(300, 310)])
        assert _wait_for_checkpoint(store, signer, 310).size == 310
    finally:
        checkpointer.stop()
    assert audit(store, [signer.verifier()]).checkpoints >= 2


def _wait_for_checkpoint(store: Store, signer: Ed25519Signer, size: int, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not done.is_set():
            latest = store.latest_checkpoint()
            if latest is not None and latest[0] >= size:
                return read_checkpoint(latest[1], [signer.verifier()])
            done.wait(0.01)
    finally:
        deadline.cancel()
    raise AssertionError(f"no checkpoint of size {size} within {timeout}s")


def test_checkpointer_refuses_to_sign_over_rewritten_history(tmp_path: Path) -> None:
    store = SQLStore.sqlite(tmp_path / "ledger.db")
    signer = Ed25519Signer.generate("example.test/log")
    log = Log(store)
    log.append([draft(i) for i in range(20)])
    checkpointer = Checkpointer(log, signer, "example.test/log")
    assert checkpointer.sign() is not None
    with store.transaction() as txn:
        tile = bytearray(txn.tile(0, 0))
        tile[5 * 32] ^= 1
        txn.connection.execute("UPDATE ledger_tiles SET data = ? WHERE level = 0 AND idx = 0", (bytes(tile),))
    fresh = Log(store, tile_cache=0)
    fresh.append([draft(99)])
    refusing = Checkpointer(fresh, signer, "example.test/log")
    with pytest.raises(InvalidProofError):
        refusing.sign()
    latest = refusing.latest()
    assert latest is not None and latest[0] == 20


def test_reopened_log_rebuilds_its_right_edge_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = Log(SQLStore.sqlite(path))
    first.append([draft(i, f"L{i % 3}") for i in range(777)])
    second = Log(SQLStore.sqlite(path))
    results = second.append([draft(1000, "L1")])
    assert isinstance(results[0], Appended) and results[0].index == 777
    report = audit(SQLStore.sqlite(path), [])
    assert report.size == 778 and report.root == second.root(778)


def test_tlog_proof_verifies_offline_and_fails_when_altered(store: Store) -> None:
    signer = Ed25519Signer.generate("example.test/log")
    log = Log(store)
    log.append([draft(i) for i in range(50)])
    note = Checkpointer(log, signer, "example.test/log").sign()
    assert note is not None
    proof = TlogProof(
        index=17, proof=tuple(log.inclusion_proof(17, 50)), checkpoint=note.decode(), extra=log.entry(17)
    )
    text = proof.encode()
    _, checkpoint, entry = verify_tlog_proof(text, [signer.verifier()], origin="example.test/log")
    assert checkpoint.size == 50 and entry == log.entry(17)
    assert parse_tlog_proof(text) == proof
    with pytest.raises(InvalidProofError):
        verify_tlog_proof(text, [signer.verifier()], entry=log.entry(18))
    with pytest.raises((BadSignatureError, MalformedError)):
        verify_tlog_proof(text.replace("\n50\n", "\n51\n"), [signer.verifier()])
    with pytest.raises(BadSignatureError):
        verify_tlog_proof(text, [Ed25519Signer.generate("example.test/log").verifier()])


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        ('{"a":61.5}', True),
        ('{"a":61.0}', False),
        ('{"a":61}', True),
        ('{"a":1e-7}', True),
        ('{"a":1e-07}', False),
        ('{"a":0.000001}', True),
        ('{"a":1E+21}', False),
        ('{"a":1e+21}', True),
        ('{"a":-0}', False),
        ('{"b":1,"a":2}', False),
        ('{"\\ufb33":1,"\U0001f600":2}', False),
        ('{"\U0001f600":2,"\\ufb33":1}', False),
        ('{"\U0001f600":2,"\ufb33":1}', True),
        ('{"a":"\\u00e9"}', False),
        ('{"a":"é"}', True),
        ('{"a":NaN}', False),
        ('{"a":12345678901234567890}', False),
    ],
)
def test_only_rfc8785_canonical_entries_parse(body: str, canonical: bool) -> None:
    entry = (
        '{"actor":"o","body":' + body + ',"kind":"k","lot":null,"lot_prev":null,"prev":null,'
        '"time":"2026-06-12T08:00:00Z","v":1}'
    ).encode()
    if canonical:
        assert parse_entry(entry).body == json.loads(body)
    else:
        with pytest.raises(MalformedError):
            parse_entry(entry)
    with pytest.raises(MalformedError) if not canonical else contextlib.nullcontext():
        Draft("k", "2026-06-12T08:00:00Z", "o", body.encode())
