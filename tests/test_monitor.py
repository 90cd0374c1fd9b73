"""The monitor follows a log and names rewrites, split views and bad device signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.checkpointer import Checkpointer
from ledger.entry import Draft
from ledger.log import Log
from ledger.monitor import LogSource, Monitor
from ledger.note import Checkpoint, Ed25519Signer, NoteVerifier
from ledger.sqlstore import SQLStore

ORIGIN = "example.test/log"


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


def grow(log: Log, n: int, lot: str = "L1") -> None:
    start = log.size()
    log.append(
        [
            Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}, lot=lot)
            for i in range(start, start + n)
        ]
    )


def test_monitor_follows_a_growing_log_without_alerts(tmp_path: Path, signer: Ed25519Signer) -> None:
    log = Log(SQLStore.sqlite(tmp_path / "log.db"))
    checkpointer = Checkpointer(log, signer, ORIGIN)
    monitor = Monitor(LogSource(log), [signer.verifier()], tmp_path / "monitor.json")
    for n in (10, 300, 1):
        grow(log, n)
        checkpointer.sign()
        assert monitor.poll() == []
    assert monitor.state.size == 311
    # Its state survives a restart and it picks up where it stopped.
    again = Monitor(LogSource(log), [signer.verifier()], tmp_path / "monitor.json")
    grow(log, 5)
    checkpointer.sign()
    assert again.poll() == [] and again.state.size == 316


def test_monitor_names_the_index_when_history_was_rewritten(tmp_path: Path, signer: Ed25519Signer) -> None:
    log = Log(SQLStore.sqlite(tmp_path / "log.db"))
    checkpointer = Checkpointer(log, signer, ORIGIN)
    grow(log, 50)
    checkpointer.sign()
    monitor = Monitor(LogSource(log), [signer.verifier()], tmp_path / "monitor.json")
    assert monitor.poll() == []
    # The operator rebuilds the log with entry 49 changed, appends more and signs with the real key.
    forged = Log(SQLStore.sqlite(tmp_path / "forged.db"))
    forged.append(
        [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}, lot="L1") for i in range(49)]
        + [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": "changed"}, lot="L1")]
    )
    grow(forged, 10)
    Checkpointer(forged, signer, ORIGIN).sign()
    alerts = Monitor(LogSource(forged), [signer.verifier()], tmp_path / "monitor.json").poll()
    assert [a.kind for a in alerts] == ["rewritten-history"]
    assert alerts[0].index == 50  # the first entry whose prev no longer matches what the monitor verified


def test_monitor_flags_a_split_view_from_another_vantage_point(tmp_path: Path, signer: Ed25519Signer) -> None:
    log = Log(SQLStore.sqlite(tmp_path / "log.db"))
    grow(log, 20)
    Checkpointer(log, signer, ORIGIN).sign()
    monitor = Monitor(LogSource(log), [signer.verifier()], tmp_path / "monitor.json")
    assert monitor.poll() == []
    other = Log(SQLStore.sqlite(tmp_path / "other.db"))
    grow(other, 20, lot="L2")
    alert = monitor.observe(Checkpoint(ORIGIN, 20, other.root(20)))
    assert alert is not None and alert.kind == "split-view" and alert.index == 19


def test_monitor_rejects_checkpoints_signed_by_another_key(tmp_path: Path, signer: Ed25519Signer) -> None:
    log = Log(SQLStore.sqlite(tmp_path / "log.db"))
    grow(log, 3)
    Checkpointer(log, Ed25519Signer.generate(ORIGIN), ORIGIN).sign()
    alerts = Monitor(LogSource(log), [signer.verifier()], tmp_path / "m.json").poll()
    assert [a.kind for a in alerts] == ["bad-checkpoint-signature"]


def test_monitor_reverifies_device_signatures_on_sensor_entries(
    tmp_path: Path, signer: Ed25519Signer
) -> None:
    device = Ed25519Signer.generate("d-0042")
    impostor = Ed25519Signer.generate("d-0042")
    log = Log(SQLStore.sqlite(tmp_path / "log.db"))

    def reading(key: Ed25519Signer, seq: int) -> Draft:
        note = key.sign_note(f'{{"device":"d-0042","seq":{seq}}}\n')
        body = {"device": "d-0042", "note": note, "signed_by": "device"}
        return Draft.of("sensor.reading", "2026-06-12T08:00:00Z", "d-0042", body, lot="plot:P1")

    log.append([reading(device, 1), reading(device, 2), reading(impostor, 3)])
    Checkpointer(log, signer, ORIGIN).sign()
    keys = {"d-0042": NoteVerifier.from_vkey(device.verifier_key())}
    alerts = Monitor(LogSource(log), [signer.verifier()], tmp_path / "m.json", device_keys=keys.get).poll()
    assert [(a.kind, a.index) for a in alerts] == [("rewritten-history", 2)]
    assert "device signature" in alerts[0].message
