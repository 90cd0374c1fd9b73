"""Sensor use cases on SQLite: chaining with dedupe before the chain, alarms, quarantine, summaries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ledger.entry import parse_entry, verify_chains
from ledger.log import Log
from ledger.monitor import check_sensor_entry
from ledger.note import Ed25519Signer
from ledger.sequencer import Sequencer
from services.db import ledger_store, make_engine
from services.sensors.rules import Accepted, DeviceInfo, Rejected, data_topic, load_limits, reading_text
from services.sensors.service import (
    DuplicateReadingError,
    MemoryDirectory,
    Message,
    SensorIngest,
    durable,
    ensure_tables,
    quarantine_counts,
    roll_up,
)

NOW = datetime(2026, 6, 12, 6, 0, tzinfo=UTC)
DEVICE = Ed25519Signer.generate("ws-0001")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[SensorIngest, Log, Engine]]:
    url = f"sqlite:///{tmp_path / 'edge.db'}"
    engine = make_engine(url)
    ensure_tables(engine)
    log = Log(ledger_store(url))
    directory = MemoryDirectory(
        [DeviceInfo("ws-0001", "ORG1", "WS-P01", "notoginseng", "device", DEVICE.verifier())]
    )
    with Sequencer(log) as sequencer:
        yield (
            SensorIngest(engine=engine, sequencer=sequencer, directory=directory, limits=load_limits()),
            log,
            engine,
        )
    engine.dispose()


def message(seq: int, readings: dict[str, float]) -> Message:
    text_ = reading_text("ws-0001", 1, seq, NOW.isoformat(), readings)
    return Message(data_topic("ORG1", "ws-0001"), DEVICE.sign_note(text_).encode(), NOW)


def test_reading_is_chained_once_and_a_duplicate_is_rejected_before_the_chain(
    world: tuple[SensorIngest, Log, Engine],
) -> None:
    ingest, log, engine = world
    msg = message(1, {"air_temp": 20.0})
    accepted = ingest.check(msg)
    assert isinstance(accepted, Accepted)
    [appended] = durable(ingest.submit(msg, accepted), 10)
    entry = parse_entry(appended.entry)
    assert (entry.kind, entry.actor, entry.lot) == ("sensor.reading", "ws-0001", "plot:WS-P01")
    assert check_sensor_entry(entry.body, lambda _: DEVICE.verifier()) is None
    with pytest.raises(DuplicateReadingError):
        durable(ingest.submit(msg, accepted), 10)
    assert log.size() == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT ledger_index FROM sensor_readings")).all() == [(0,)]


def test_alarm_follows_its_reading_on_the_plot_chain(world: tuple[SensorIngest, Log, Engine]) -> None:
    ingest, log, engine = world
    msg = message(2, {"air_temp": -2.0, "soil_moisture": 50.0})
    accepted = ingest.check(msg)
    assert isinstance(accepted, Accepted)
    results = durable(ingest.submit(msg, accepted), 10)
    kinds = [parse_entry(r.entry).kind for r in results]
    assert kinds == ["sensor.reading", "sensor.alarm", "sensor.alarm"]
    alarm = parse_entry(results[1].entry)
    assert alarm.lot == "plot:WS-P01" and alarm.body["alarm"] == "frost"
    assert verify_chains(log.store.entries(0, log.size())) == 3
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT alarm FROM sensor_alarms ORDER BY alarm")).all()
    assert [r[0] for r in rows] == ["frost", "waterlogging"]


def test_quarantine_keeps_reason_payload_and_counts(world: tuple[SensorIngest, Log, Engine]) -> None:
    ingest, _, engine = world
    bad = Message(data_topic("ORG1", "nobody"), b"junk", NOW)
    result = ingest.check(bad)
    assert isinstance(result, Rejected) and result.reason == "unknown-device"
    ingest.quarantine([(bad, result), (bad, result)])
    assert quarantine_counts(engine) == {"unknown-device": 2}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payload, reason FROM sensor_quarantine")).first() == (
            b"junk",
            "unknown-device",
        )


def test_roll_up_writes_hourly_and_daily_summaries(world: tuple[SensorIngest, Log, Engine]) -> None:
    ingest, _, engine = world
    for seq, temp in ((10, 18.0), (11, 22.0)):
        msg = message(seq, {"air_temp": temp})
        accepted = ingest.check(msg)
        assert isinstance(accepted, Accepted)
        durable(ingest.submit(msg, accepted), 10)
    ms = int(NOW.timestamp() * 1000)
    assert roll_up(engine, ms, ms) == 2
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT period, count, low, high, mean FROM sensor_summaries")).all()
    assert sorted(rows) == [("day", 2, 18.0, 22.0, 20.0), ("hour", 2, 18.0, 22.0, 20.0)]
    assert json.loads(json.dumps(quarantine_counts(engine))) == {}


def test_record_chains_a_batch_once_dedupes_within_and_across_batches_and_keeps_summaries(
    world: tuple[SensorIngest, Log, Engine],
) -> None:
    ingest, log, engine = world
    batch = []
    for seq, temp in ((30, 18.0), (31, -1.0), (30, 18.0), (32, 26.0)):  # seq 30 twice in one batch
        msg = message(seq, {"air_temp": temp, "rh": 50.0})
        verdict = ingest.check(msg)
        assert isinstance(verdict, Accepted)
        batch.append((msg, verdict))
    junk = Message(data_topic("ORG1", "nobody"), b"junk", NOW)
    rejected = ingest.check(junk)
    assert isinstance(rejected, Rejected)
    indices = ingest.record(batch, [(junk, rejected)])
    assert indices[2] is None and None not in (indices[0], indices[1], indices[3])
    assert log.size() == 4  # three readings and the frost alarm
    assert verify_chains(log.store.entries(0, log.size())) == 4
    assert ingest.record(batch[:1]) == [None]  # already recorded: a replay, never chained again
    assert log.size() == 4
    assert quarantine_counts(engine) == {"replayed": 2, "unknown-device": 1}
    with engine.connect() as conn:
        incremental = sorted(conn.execute(text("SELECT * FROM sensor_summaries")).all())
        alarms = conn.execute(text("SELECT alarm, org FROM sensor_alarms")).all()
    assert alarms == [("frost", "ORG1")]
    ms = int(NOW.timestamp() * 1000)
    roll_up(engine, ms, ms)  # a recompute from the readings agrees with what the batches kept
    with engine.connect() as conn:
        recomputed = sorted(conn.execute(text("SELECT * FROM sensor_summaries")).all())
    strip = sorted((r[1:6], round(r[8], 9)) for r in incremental)
    assert strip == sorted((r[1:6], round(r[8], 9)) for r in recomputed)
    assert {(r[2], r[4], r[5]) for r in incremental} >= {("hour", "air_temp", 3), ("day", "rh", 3)}
