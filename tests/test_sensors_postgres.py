"""The batch ingest on PostgreSQL: migrated schema, dedupe query, running summaries, sessions, alarms API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.entry import verify_chains
from ledger.log import Log
from ledger.note import Ed25519Signer
from services.db import ledger_store, make_engine
from services.migrate import upgrade
from services.sensors.rules import Accepted, DeviceInfo, data_topic, load_limits, reading_text
from services.sensors.service import MemoryDirectory, Message, Presence, SensorIngest, quarantine_counts
from services.settings import Settings

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 6, 12, 6, 0, tzinfo=UTC)
DEVICE = Ed25519Signer.generate("ws-0001")


def test_record_runs_on_postgres(pg_url: str, tmp_path: Path) -> None:
    upgrade(Settings(database_url=pg_url, key_dir=tmp_path / "keys"), now=NOW)
    engine = make_engine(pg_url)
    log = Log(ledger_store(pg_url))
    info = DeviceInfo("ws-0001", "ORG1", "WS-P01", "notoginseng", "device", DEVICE.verifier())
    ingest = SensorIngest(engine=engine, log=log, directory=MemoryDirectory([info]), limits=load_limits())
    start = log.size()
    batch = []
    for seq, temp in ((1, 20.0), (2, -3.0), (1, 20.0), (2**40, 30.0)):
        body = reading_text("ws-0001", 5, seq, NOW.isoformat(), {"air_temp": temp})
        msg = Message(data_topic("ORG1", "ws-0001"), DEVICE.sign_note(body).encode(), NOW)
        verdict = ingest.check(msg)
        assert isinstance(verdict, Accepted)
        batch.append((msg, verdict))
    born = Presence("ws-0001", "ORG1", "birth", {"boot": 5}, 1)
    assert [i is None for i in ingest.record(batch, [], [born])] == [False, False, True, False]
    assert [i is None for i in ingest.record(batch[:2])] == [True, True]
    assert log.size() - start == 4  # three readings and a frost alarm
    assert verify_chains(log.store.entries(0, log.size())) == log.size()
    assert quarantine_counts(engine) == {"replayed": 3}
    with engine.connect() as conn:
        summary = conn.execute(
            text("SELECT count, low, high, mean FROM sensor_summaries WHERE period = 'day'")
        ).one()
        session = conn.execute(text("SELECT boot, birth_ms FROM sensor_device_sessions")).one()
        alarm = conn.execute(text("SELECT alarm, org FROM sensor_alarms")).one()
    assert tuple(summary) == (3, -3.0, 30.0, pytest.approx(47.0 / 3))
    assert tuple(session) == (5, 1) and tuple(alarm) == ("frost", "ORG1")
    engine.dispose()
