"""The tamper drill of docs/TAMPER_DRILL.md against a temporary app: a row of ledger_entries is edited with
sqlite3, then `daodi ledger verify --db` and the monitor (in process, and `daodi monitor --url --once` over
HTTP) name the entry."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lots_world import World
from sqlmodel import Session, select

from ledger.checkpointer import Checkpointer
from ledger.errors import InvalidProofError
from ledger.monitor import LogSource, Monitor
from services.app import create_app
from services.demo import free_port, serve_in_thread
from services.keys import KeyRing
from services.lots import service as lots
from services.lots.models import LotEvent, ReceivingIn, ShippingIn
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DAODI = ROOT / ".venv" / "bin" / "daodi"


@pytest.fixture
def world(settings: Settings) -> World:
    return World(settings)


@pytest.fixture
def server(settings: Settings, world: World) -> Iterator[str]:
    """The app on a real port (`daodi monitor --url` needs one)."""
    port = free_port()
    running = serve_in_thread(create_app(settings), "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True


def db_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def sign(world: World, settings: Settings) -> int:
    """Sign a checkpoint of the log as it stands, with the platform's key; returns its size."""
    keys = KeyRing.load(settings.key_dir, settings.log_origin)
    Checkpointer(world.log, keys.log, settings.log_origin).sign()
    return world.log.size()


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DAODI_KEY_DIR=str(settings.key_dir), DAODI_DATABASE_URL=settings.database_url)
    return subprocess.run(
        [str(DAODI), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def ship_and_receive(world: World) -> None:
    world.run(
        lots.ship,
        world.grower,
        ShippingIn.model_validate(
            {
                "lot": "QS26D0007",
                "consignee_org_id": world.factory_id,
                "delivery_ref": "DN-2026-0621",
                "invoice_ref": "INV-1",
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    [incoming], _ = world.read(lots.list_shipments, world.processor, incoming=True, limit=10, offset=0)
    world.run(
        lots.receive,
        world.processor,
        ReceivingIn.model_validate({"shipment_id": incoming.id, "event_time": "2026-06-22T10:00:00+08:00"}),
    )


def ledger_index_of(world: World, event_type: str) -> int:
    with Session(world.engine) as s:
        index = s.exec(select(LotEvent.ledger_index).where(LotEvent.type == event_type)).one()
    assert index is not None
    return index


def edit_entry(settings: Settings, index: int, old: bytes, new: bytes) -> None:
    """What an insider with database access does: rewrite bytes of one stored entry, nothing else."""
    conn = sqlite3.connect(db_path(settings))
    try:
        [data] = conn.execute("SELECT data FROM ledger_entries WHERE idx = ?", (index,)).fetchone()
        assert old in bytes(data)
        conn.execute(
            "UPDATE ledger_entries SET data = ? WHERE idx = ?", (bytes(data).replace(old, new), index)
        )
        conn.commit()
    finally:
        conn.close()


def test_an_edited_entry_is_named_by_ledger_verify_and_by_the_monitor(
    world: World, settings: Settings, server: str, tmp_path: Path
) -> None:
    world.fresh_lot()
    world.dry()
    verified = sign(world, settings)
    monitor = Monitor(
        LogSource(world.log),
        [KeyRing.load(settings.key_dir, settings.log_origin).log_verifier],
        tmp_path / "monitor.json",
    )
    assert monitor.poll() == [] and monitor.state.size == verified
    state = tmp_path / "cli-monitor.json"
    first = cli(settings, "monitor", "--url", server, "--state", str(state), "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout.splitlines()[-1]) == {"ok": True, "verified_size": verified}
    assert cli(settings, "ledger", "verify", "--db", settings.database_url).returncode == 0

    # The log grows and a new checkpoint is signed; then someone edits the shipping entry in the database.
    ship_and_receive(world)
    grown = sign(world, settings)
    shipping = ledger_index_of(world, "shipping")
    assert verified <= shipping < grown - 1
    edit_entry(settings, shipping, b'"delivery_ref":"DN-2026-0621"', b'"delivery_ref":"DN-2026-0666"')

    verify = cli(settings, "ledger", "verify", "--db", settings.database_url)
    assert verify.returncode == 1
    assert verify.stdout.startswith(f"FAIL at index {shipping}:"), verify.stdout
    # The monitor names the first entry whose `prev` no longer matches, and says which entry changed.
    alerts = monitor.poll()
    assert [(a.kind, a.index) for a in alerts] == [("rewritten-history", shipping + 1)]
    assert f"leaf hash of entry {shipping}" in alerts[0].message
    assert monitor.state.size == verified  # nothing past the edit is accepted
    again = cli(settings, "monitor", "--url", server, "--state", str(state), "--once")
    assert again.returncode == 1, again.stdout + again.stderr
    alert = json.loads(again.stdout.splitlines()[0])
    assert alert["alert"] == "rewritten-history" and alert["index"] == shipping + 1
    assert f"entry {shipping}" in alert["message"]


def test_an_edit_to_history_the_monitor_already_verified_is_named_by_verify_and_breaks_proofs(
    world: World, settings: Settings
) -> None:
    world.fresh_lot()
    world.dry()
    harvest = ledger_index_of(world, "harvest")
    size = sign(world, settings)
    edit_entry(settings, harvest, b'"g":1200000', b'"g":1900000')
    verify = cli(settings, "ledger", "verify", "--db", settings.database_url)
    assert verify.returncode == 1 and verify.stdout.startswith(f"FAIL at index {harvest}:"), verify.stdout
    # A buyer asking for the entry's inclusion proof gets a refusal, never a proof of the edited bytes.
    with pytest.raises(InvalidProofError):
        world.log.inclusion_proof(harvest, size)
